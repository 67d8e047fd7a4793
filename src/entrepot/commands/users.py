"""``entrepot users``: people's accounts (platform admins create them)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from entrepot.commands.errors import UsageProblem
from entrepot.commands.session import Session, api_command

app = typer.Typer(rich_markup_mode=None, help="People: accounts, and who a user token is.")

UserId = Annotated[str, typer.Argument(metavar="USER_ID", help="User id.", show_default=False)]


def _password(from_stdin: bool) -> str:
    """From stdin (scripts), else asked twice without echo; never an option's value."""
    if from_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise UsageProblem("no password given (--password-stdin, or type it when asked)")
    return password


@api_command(app, "create")
def create(
    session: Session,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The person's email.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    platform_admin: Annotated[
        bool, typer.Option("--platform-admin", help="Make them a platform admin.")
    ] = False,
) -> None:
    """Create an account (platform admins); the password is asked for or read from stdin."""
    created = session.api.users.create(
        email, _password(password_stdin), is_platform_admin=platform_admin
    )
    session.printer.one(created)


@api_command(app, "patch")
def patch(
    session: Session,
    user_id: UserId,
    disabled: Annotated[
        bool, typer.Option("--disabled/--enabled", help="Disable (or enable) the account.")
    ],
) -> None:
    """Disable or enable an account; a disabled user's tokens stop at once."""
    session.printer.one(session.api.users.update(user_id, disabled=disabled))


@api_command(app, "me")
def me(session: Session) -> None:
    """Who a person's token is (their memberships); an API key is no person (404)."""
    session.printer.one(session.api.users.me())
