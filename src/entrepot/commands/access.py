"""``entrepot access-requests`` and ``entrepot grants``."""

from __future__ import annotations

from enum import StrEnum
from itertools import islice
from typing import Annotated

import typer

from entrepot.commands.inputs import json_object, moment
from entrepot.commands.options import Limit, Scope, page_size, scope_values
from entrepot.commands.session import Session, api_command

requests = typer.Typer(
    rich_markup_mode=None,
    help="Access requests to restricted datasets: ask, list pending, approve (optionally "
    "narrowed), reject.",
)
grants = typer.Typer(
    rich_markup_mode=None, help="Grants: who may read or write which dataset; revoke at once."
)


class Status(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    all = "all"


RequestId = Annotated[
    str, typer.Argument(metavar="REQUEST_ID", help="Access request id.", show_default=False)
]
Note = Annotated[str | None, typer.Option("--note", help="A note for the requester.")]
COLUMNS = ["id", "dataset", "app", "scopes", "status", "reason", "created_at"]


@api_command(requests, "create")
def create(
    session: Session,
    dataset: Annotated[str, typer.Argument(metavar="DATASET", help="Dataset name.")],
    app: Annotated[str, typer.Option("--app", help="The application asking.")],
    scope: Annotated[
        list[Scope], typer.Option("--scope", help="A scope asked for; repeat for several.")
    ],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the provider.")] = None,
) -> None:
    """Ask for access to a dataset on behalf of an application."""
    asked = session.api.access_requests.create(
        dataset, app=app, scopes=[s.value for s in scope], reason=reason
    )
    session.printer.one(asked)


@api_command(requests, "list")
def list_(
    session: Session,
    status: Annotated[Status, typer.Option("--status")] = Status.pending,
    dataset: Annotated[str | None, typer.Option("--dataset")] = None,
    app: Annotated[str | None, typer.Option("--app")] = None,
    limit: Limit = None,
) -> None:
    """List access requests (pending ones unless --status says otherwise)."""
    found = session.api.access_requests.list(
        status=None if status is Status.all else status.value,
        dataset=dataset,
        app=app,
        limit=page_size(limit),
    )
    session.printer.many(islice(found, limit), COLUMNS)


@api_command(requests, "get")
def get(session: Session, request_id: RequestId) -> None:
    """Show one access request."""
    session.printer.one(session.api.access_requests.get(request_id))


@api_command(requests, "approve")
def approve(
    session: Session,
    request_id: RequestId,
    note: Note = None,
    scope: Annotated[
        list[Scope] | None,
        typer.Option("--scope", help="Grant fewer scopes than asked; repeat for several."),
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option("--field", help="Share only this record field; repeat for several."),
    ] = None,
    row_filter: Annotated[
        str | None,
        typer.Option(
            "--row-filter",
            help='Share only matching rows: JSON as the API takes it, e.g. {"price": {"lt": 50}}'
            " (or @FILE).",
        ),
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="RFC 3339 time the grant ends.")
    ] = None,
) -> None:
    """Approve a request, creating its grant, optionally narrowed."""
    approved = session.api.access_requests.approve(
        request_id,
        note=note,
        scopes=scope_values(scope),
        fields=field,
        row_filter=json_object(row_filter, "--row-filter") if row_filter else None,
        expires_at=moment(expires_at, "--expires-at"),
    )
    session.printer.one(approved)


@api_command(requests, "reject")
def reject(session: Session, request_id: RequestId, note: Note = None) -> None:
    """Reject a request."""
    session.printer.one(session.api.access_requests.reject(request_id, note=note))


GrantId = Annotated[str, typer.Argument(metavar="GRANT_ID", help="Grant id.", show_default=False)]


@api_command(grants, "list")
def list_grants(
    session: Session,
    app: Annotated[str | None, typer.Option("--app")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset")] = None,
    limit: Limit = None,
) -> None:
    """List grants (a provider sees its datasets', an app its own)."""
    found = session.api.grants.list(app=app, dataset=dataset, limit=page_size(limit))
    session.printer.many(
        islice(found, limit),
        ["id", "dataset", "app", "scopes", "fields", "row_filter", "status", "expires_at"],
    )


@api_command(grants, "get")
def get_grant(session: Session, grant_id: GrantId) -> None:
    """Show one grant."""
    session.printer.one(session.api.grants.get(grant_id))


@api_command(grants, "revoke", output=False)
def revoke(session: Session, grant_id: GrantId) -> None:
    """Revoke a grant, at once."""
    session.api.grants.revoke(grant_id)
    session.printer.done(f"Revoked grant {grant_id}")
