"""``entrepot orgs``: organisations and their members."""

from __future__ import annotations

from enum import StrEnum
from itertools import islice
from typing import Annotated

import typer

from entrepot.commands.options import Limit, page_size
from entrepot.commands.session import Session, api_command

app = typer.Typer(
    rich_markup_mode=None, help="Organisations (they own datasets and apps) and their members."
)


Org = Annotated[str, typer.Argument(metavar="ORG", help="Organisation name.", show_default=False)]


@api_command(app, "create")
def create(
    session: Session,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="A URL slug, unique on the platform.")
    ],
    title: Annotated[str, typer.Option("--title", help="A name for people.")],
) -> None:
    """Create an organisation."""
    session.printer.one(session.api.orgs.create(name, title))


@api_command(app, "get")
def get(session: Session, name: Org) -> None:
    """Show one organisation."""
    session.printer.one(session.api.orgs.get(name))


@api_command(app, "list")
def list_(session: Session, limit: Limit = None) -> None:
    """List the organisations you may see."""
    found = session.api.orgs.list(limit=page_size(limit))
    session.printer.many(islice(found, limit), ["name", "title", "created_at"])


@api_command(app, "members")
def members(session: Session, org: Org, limit: Limit = None) -> None:
    """List an organisation's members."""
    found = session.api.orgs.members(org, limit=page_size(limit))
    session.printer.many(islice(found, limit), ["user_id", "email", "role", "created_at"])


class Role(StrEnum):
    owner = "owner"
    admin = "admin"
    member = "member"


@api_command(app, "add-member")
def add_member(
    session: Session,
    org: Org,
    email: Annotated[
        str, typer.Argument(metavar="EMAIL", help="The user's email (the account must exist).")
    ],
    role: Annotated[Role, typer.Option("--role", help="Their role.")] = Role.member,
) -> None:
    """Make a user a member of an organisation (again: change their role)."""
    session.printer.one(session.api.orgs.add_member(org, email, role.value))


@api_command(app, "remove-member", output=False)
def remove_member(
    session: Session,
    org: Org,
    user_id: Annotated[str, typer.Argument(metavar="USER_ID", help="The member's user id.")],
) -> None:
    """Remove a member from an organisation."""
    session.api.orgs.remove_member(org, user_id)
    session.printer.done(f"Removed {user_id} from {org}")
