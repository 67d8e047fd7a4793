"""``entrepot orgs``: organisations and their members."""

from __future__ import annotations

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
