"""What every API command shares: the connection options, the SDK client, the printer.

``@api_command(group, "name")`` registers a function whose first parameter is a
:class:`Session`; the command gets ``--url``, ``--token``, ``--profile`` (and
``--output`` unless it writes something else) added to its own options, the
connection resolved once (connection.py), and the error boundary (errors.py)
around its body. Every request goes through the SDK's blocking ``Client``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from entrepot import __version__
from entrepot.client import Client
from entrepot.commands.connection import Connection, resolve
from entrepot.commands.errors import reporting
from entrepot.commands.output import Output, Printer

PANEL = "Connection and output"

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="ENTREPOT_URL",
        show_envvar=True,
        help="Server base URL [default: the profile's, else http://127.0.0.1:8000].",
        rich_help_panel=PANEL,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ENTREPOT_TOKEN",
        show_envvar=True,
        show_default=False,
        help="API key or OAuth access token [default: the profile's].",
        rich_help_panel=PANEL,
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        envvar="ENTREPOT_PROFILE",
        show_envvar=True,
        help="A profile saved by 'entrepot login' [default: the default profile].",
        rich_help_panel=PANEL,
    ),
]
OutputOption = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        envvar="ENTREPOT_OUTPUT",
        show_envvar=True,
        case_sensitive=False,
        help="How to print the answer [default: table on a terminal, else json].",
        rich_help_panel=PANEL,
    ),
]

_CONNECTION: dict[str, Any] = {
    "url": UrlOption,
    "token": TokenOption,
    "profile": ProfileOption,
}


@dataclass
class Session:
    connection: Connection
    printer: Printer
    _client: Client | None = field(default=None, repr=False)

    @property
    def api(self) -> Client:
        if self._client is None:
            self._client = Client(
                self.connection.url,
                self.connection.token,
                headers={"User-Agent": f"entrepot-cli/{__version__}"},
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


Command = Callable[..., None]


def api_command(
    group: typer.Typer, name: str, *, output: bool = True
) -> Callable[[Command], Command]:
    """Register ``fn(session, **options)`` as ``name`` in ``group`` (see the module doc)."""

    def register(fn: Command) -> Command:
        own = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]
        added = {**_CONNECTION, **({"output": OutputOption} if output else {})}
        extra = [
            inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=hint)
            for key, hint in added.items()
        ]

        @functools.wraps(fn)
        def run(**options: Any) -> None:
            given = {key: options.pop(key, None) for key in added}
            with reporting(None):  # an unknown profile, a URL that is not one
                connection = resolve(given["url"], given["token"], given["profile"])
            session = Session(connection, Printer(given.get("output")))
            try:
                with reporting(connection):
                    fn(session, **options)
            finally:
                session.close()

        parameters = [*own, *extra]
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        group.command(name)(run)
        return fn

    return register
