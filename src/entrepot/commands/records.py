"""``entrepot records``: one record at a time, and lists with filters."""

from __future__ import annotations

from itertools import islice
from typing import Annotated

import typer

from entrepot.commands.inputs import filters, json_object
from entrepot.commands.options import Limit, page_size
from entrepot.commands.session import Session, api_command

app = typer.Typer(
    rich_markup_mode=None, help="Records: get, create, put, patch, delete, and list with filters."
)

Dataset = Annotated[
    str, typer.Argument(metavar="DATASET", help="Dataset name.", show_default=False)
]
RecordId = Annotated[
    str, typer.Argument(metavar="RECORD_ID", help="Record id.", show_default=False)
]
Data = Annotated[
    str,
    typer.Option(
        "--data",
        "-d",
        help="The record as JSON, or @FILE, or @- for stdin.",
        show_default=False,
    ),
]
IfMatch = Annotated[
    str | None,
    typer.Option(
        "--if-match",
        help='Only if the record is still at this ETag (its version, e.g. "3" or 3); else 412.',
    ),
]


def _etag(given: str | None) -> str | None:
    if given is None or given == "*" or given.startswith(('"', "W/")):
        return given
    return f'"{given}"'


@api_command(app, "get")
def get(session: Session, dataset: Dataset, record_id: RecordId) -> None:
    """Show one record: {id, version, data, created_at, updated_at}."""
    session.printer.one(session.api.records.get(dataset, record_id))


@api_command(app, "create")
def create(session: Session, dataset: Dataset, data: Data) -> None:
    """Add a record (POST): its id is the primary key's value, or assigned by the platform."""
    session.printer.one(session.api.records.create(dataset, json_object(data, "--data")))


@api_command(app, "put")
def put(
    session: Session,
    dataset: Dataset,
    record_id: RecordId,
    data: Data,
    if_match: IfMatch = None,
    if_absent: Annotated[
        bool, typer.Option("--if-absent", help="Create only; 412 if the record exists.")
    ] = False,
) -> None:
    """Replace a record with the one given, creating it if absent."""
    record = session.api.records.put(
        dataset,
        record_id,
        json_object(data, "--data"),
        if_match=_etag(if_match),
        if_none_match="*" if if_absent else None,
    )
    session.printer.one(record)


@api_command(app, "patch")
def patch(
    session: Session, dataset: Dataset, record_id: RecordId, data: Data, if_match: IfMatch = None
) -> None:
    """Change some fields (JSON Merge Patch: null removes a field)."""
    changes = json_object(data, "--data")
    session.printer.one(
        session.api.records.patch(dataset, record_id, changes, if_match=_etag(if_match))
    )


@api_command(app, "delete", output=False)
def delete(
    session: Session, dataset: Dataset, record_id: RecordId, if_match: IfMatch = None
) -> None:
    """Delete a record."""
    session.api.records.delete(dataset, record_id, if_match=_etag(if_match))
    session.printer.done(f"Deleted {record_id} from {dataset}")


@api_command(app, "list")
def list_(
    session: Session,
    dataset: Dataset,
    filter: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            "-f",
            help="FIELD=VALUE, or FIELD[OP]=VALUE with OP one of eq, ne, gt, gte, lt, lte, "
            "in (comma-separated values), like; repeat for several (all must hold).",
        ),
    ] = None,
    sort: Annotated[
        str | None, typer.Option("--sort", help="Fields, comma-separated; -field descends.")
    ] = None,
    fields: Annotated[
        str | None, typer.Option("--fields", help="Only these fields, comma-separated.")
    ] = None,
    limit: Limit = None,
) -> None:
    """List records, filtered and sorted."""
    found = session.api.records.list(
        dataset, filter=filters(filter), sort=sort, fields=fields, limit=page_size(limit)
    )
    session.printer.many(islice(found, limit), ["id", "version", "data.*"])
