"""``entrepot login``, ``logout`` and ``profiles``: named connections in the config file.

``login`` checks the URL and token against the server before saving them (a
401 saves nothing), so a saved profile is one that worked. The token is read
from ``--token``, from stdin when it is not a terminal (``--with-token``, for
scripts), or asked for without echo; it is never printed.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from entrepot.client import Client
from entrepot.commands.connection import (
    DEFAULT_PROFILE,
    DEFAULT_URL,
    Config,
    Connection,
    Profile,
    checked_url,
    config_path,
)
from entrepot.commands.errors import UsageProblem, reporting
from entrepot.commands.output import Output, Printer
from entrepot.commands.session import OutputOption

commands = typer.Typer(rich_markup_mode=None)

ProfileName = Annotated[
    str | None,
    typer.Option(
        "--profile",
        envvar="ENTREPOT_PROFILE",
        show_envvar=True,
        help=f"The profile's name [default: the default profile, else {DEFAULT_PROFILE!r}].",
    ),
]


@commands.command("login")
def login(
    profile: ProfileName = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="ENTREPOT_URL",
            show_envvar=True,
            help=f"Server base URL [default: asked, or {DEFAULT_URL}].",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", show_default=False, help="API key or access token [default: asked]."
        ),
    ] = None,
    with_token: Annotated[
        bool, typer.Option("--with-token", help="Read the token from stdin (for scripts).")
    ] = False,
    make_default: Annotated[
        bool,
        typer.Option("--default/--no-default", help="Make it the default profile."),
    ] = True,
) -> None:
    """Check a server URL and token, then save them as a profile (mode 0600)."""
    with reporting(None):
        config = Config.load()
        name = profile or config.default or DEFAULT_PROFILE
        interactive = sys.stdin.isatty()
        if url is None:
            url = typer.prompt("Server URL", default=DEFAULT_URL) if interactive else DEFAULT_URL
        url = checked_url(url)
        if token is None:
            if with_token or not interactive:
                token = sys.stdin.readline().strip()
            else:
                token = typer.prompt("API key or access token", hide_input=True)
        if not token:
            raise UsageProblem("no token given (--token, --with-token, or type it when asked)")
        connection = Connection(url, token, name)
    with reporting(connection):
        _verify(connection)
        config.profiles[name] = Profile(name, url, token)
        if make_default or config.default is None:
            config.default = name
        path = config.save()
    Printer(None).done(f"Logged in to {url}; saved as profile {name!r} in {path}")


def _verify(connection: Connection) -> None:
    """Ask who the token is (any valid credential may): a 401 raises, nothing is saved."""
    with Client(connection.url, connection.token) as api:
        api.me()


@commands.command("logout")
def logout(profile: ProfileName = None) -> None:
    """Forget a profile's token (the profile's URL stays)."""
    with reporting(None):
        config = Config.load()
        chosen = config.chosen(profile)
        if chosen is None:
            raise UsageProblem(f"no profile to log out of in {config_path()}")
        config.profiles[chosen.name] = Profile(chosen.name, chosen.url, None)
        config.save()
    Printer(None).done(f"Logged out of profile {chosen.name!r} ({chosen.url})")


@commands.command("profiles")
def profiles(output: OutputOption = None) -> None:
    """List the saved profiles (never their tokens)."""
    with reporting(None):
        config = Config.load()
    printer = Printer(output)
    rows = [
        {
            "name": p.name,
            "url": p.url,
            "default": p.name == config.default,
            "logged_in": p.token is not None,
        }
        for p in config.profiles.values()
    ]
    if printer.format is Output.table and not rows:
        printer.done(f"No profiles in {config_path()}: create one with 'entrepot login'.")
        return
    printer.many(rows, ["name", "url", "default", "logged_in"])
