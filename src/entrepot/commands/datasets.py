"""``entrepot datasets``: the catalog."""

from __future__ import annotations

import sys
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer

from entrepot.commands.errors import UsageProblem
from entrepot.commands.inputs import json_file
from entrepot.commands.options import Limit, Yes, page_size
from entrepot.commands.output import Output
from entrepot.commands.session import Session, api_command

app = typer.Typer(
    rich_markup_mode=None,
    help="Datasets: create from a JSON Schema file, get, list, patch, delete.",
)


class Visibility(StrEnum):
    public = "public"
    restricted = "restricted"


Name = Annotated[str, typer.Argument(metavar="DATASET", help="Dataset name.", show_default=False)]
SchemaFile = Annotated[
    Path,
    typer.Option(
        "--schema",
        exists=True,
        dir_okay=False,
        help="A JSON file: the JSON Schema (2020-12) of one record.",
    ),
]
Indexes = Annotated[
    list[str] | None, typer.Option("--index", help="A field to index; repeat for several.")
]
Tags = Annotated[list[str] | None, typer.Option("--tag", help="A tag; repeat for several.")]
License = Annotated[
    str | None,
    typer.Option("--license", help="The records' licence: an SPDX id (CC-BY-4.0) or a short name."),
]
LicenseUrl = Annotated[
    str | None, typer.Option("--license-url", help="Where the licence's text is (http/https).")
]
ContactName = Annotated[str | None, typer.Option("--contact-name", help="Who answers questions.")]
ContactEmail = Annotated[str | None, typer.Option("--contact-email", help="Their email address.")]
ContactUrl = Annotated[
    str | None, typer.Option("--contact-url", help="A page to ask on (http/https).")
]


def _contact(name: str | None, email: str | None, url: str | None) -> dict[str, str] | None:
    """The contact from the options given (None when none was)."""
    given = {"name": name, "email": email, "url": url}
    return {k: v for k, v in given.items() if v is not None} or None


@api_command(app, "create")
def create(
    session: Session,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="A URL slug, unique on the platform.")
    ],
    schema: SchemaFile,
    org: Annotated[str, typer.Option("--org", help="The organisation that owns it.")],
    title: Annotated[str, typer.Option("--title", help="A name for people.")],
    description: Annotated[str | None, typer.Option("--description")] = None,
    primary_key: Annotated[
        str | None,
        typer.Option("--primary-key", help="A record field used as the record id."),
    ] = None,
    visibility: Annotated[
        Visibility | None, typer.Option("--visibility", help="[default: restricted]")
    ] = None,
    index: Indexes = None,
    tag: Tags = None,
    require_if_match: Annotated[
        bool, typer.Option("--require-if-match", help="Refuse writes without If-Match (428).")
    ] = False,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Approve access requests at once.")
    ] = False,
    license: License = None,
    license_url: LicenseUrl = None,
    contact_name: ContactName = None,
    contact_email: ContactEmail = None,
    contact_url: ContactUrl = None,
) -> None:
    """Create a dataset from a schema file."""
    created = session.api.datasets.create(
        name,
        org=org,
        title=title,
        schema=json_file(schema, "--schema"),
        description=description,
        primary_key=primary_key,
        visibility=visibility.value if visibility else None,
        indexes=index,
        tags=tag,
        require_if_match=require_if_match or None,
        auto_approve=auto_approve or None,
        license=license,
        license_url=license_url,
        contact=_contact(contact_name, contact_email, contact_url),
    )
    session.printer.one(created)


@api_command(app, "get")
def get(session: Session, name: Name) -> None:
    """Show one dataset's metadata (and its schema)."""
    session.printer.one(session.api.datasets.get(name))


@api_command(app, "list")
def list_(
    session: Session,
    q: Annotated[str | None, typer.Option("--q", help="Full-text search.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's.")] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Only datasets with this tag.")] = None,
    limit: Limit = None,
    as_json: Annotated[
        bool, typer.Option("--json", hidden=True, help="Same as --output ndjson.")
    ] = False,
) -> None:
    """List the datasets you may see."""
    if as_json:
        session.printer.format = Output.ndjson
    found = session.api.datasets.list(q=q, org=org, tag=tag, limit=page_size(limit))
    session.printer.many(
        islice(found, limit), ["name", "org", "title", "visibility", "primary_key"]
    )


@api_command(app, "patch")
def patch(
    session: Session,
    name: Name,
    title: Annotated[str | None, typer.Option("--title")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema",
            exists=True,
            dir_okay=False,
            help="A new schema; refused (409) if stored records would not match it.",
        ),
    ] = None,
    visibility: Annotated[Visibility | None, typer.Option("--visibility")] = None,
    index: Annotated[
        list[str] | None, typer.Option("--index", help="The indexed fields (all of them).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="The tags (all of them).")] = None,
    require_if_match: Annotated[
        bool | None, typer.Option("--require-if-match/--no-require-if-match")
    ] = None,
    auto_approve: Annotated[bool | None, typer.Option("--auto-approve/--no-auto-approve")] = None,
    license: License = None,
    license_url: LicenseUrl = None,
    contact_name: ContactName = None,
    contact_email: ContactEmail = None,
    contact_url: ContactUrl = None,
) -> None:
    """Change a dataset's metadata: only the options given are sent. Any --contact-*
    option replaces the whole contact with the parts given."""
    changes: dict[str, Any] = {
        key: value
        for key, value in {
            "title": title,
            "description": description,
            "schema": json_file(schema, "--schema") if schema else None,
            "visibility": visibility.value if visibility else None,
            "indexes": index,
            "tags": tag,
            "require_if_match": require_if_match,
            "auto_approve": auto_approve,
            "license": license,
            "license_url": license_url,
            "contact": _contact(contact_name, contact_email, contact_url),
        }.items()
        if value is not None
    }
    if not changes:
        raise UsageProblem("nothing to change: give at least one option (see --help)")
    session.printer.one(session.api.datasets.update(name, **changes))


@api_command(app, "delete", output=False)
def delete(session: Session, name: Name, yes: Yes = False) -> None:
    """Delete a dataset and every record in it."""
    if not yes:
        if not sys.stdin.isatty():
            raise UsageProblem(f"deleting {name} deletes its records: pass --yes to confirm")
        typer.confirm(f"Delete dataset {name} and all its records?", abort=True)
    session.api.datasets.delete(name)
    session.printer.done(f"Deleted dataset {name}")
