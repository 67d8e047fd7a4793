"""``entrepot changes``: a dataset's change feed, read or followed (NDJSON as it comes)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Annotated

import typer

from entrepot.client.models import Change
from entrepot.commands.options import Limit
from entrepot.commands.output import Output
from entrepot.commands.session import Session, api_command

commands = typer.Typer(rich_markup_mode=None)


@api_command(commands, "changes")
def changes(
    session: Session,
    dataset: Annotated[
        str, typer.Argument(metavar="DATASET", help="Dataset name.", show_default=False)
    ],
    after: Annotated[
        int, typer.Option("--after", min=0, help="Changes with a seq above this one.")
    ] = 0,
    incarnation: Annotated[
        str | None,
        typer.Option("--incarnation", help="The dataset incarnation the seq belongs to."),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-F", help="Keep waiting for new changes (NDJSON, until Ctrl-C)."),
    ] = False,
    wait: Annotated[
        float, typer.Option("--wait", min=1, max=60, help="Long-poll seconds while following.")
    ] = 30.0,
    limit: Limit = None,
) -> None:
    """The changes after a seq, in commit order: {seq, op, id, version, data, at}."""
    found: Iterator[Change] = session.api.changes.follow(
        dataset,
        since=after,
        incarnation=incarnation,
        wait=wait,
        limit=min(limit or 1000, 1000),
        until_idle=not follow,
    )
    if follow and session.printer.format is not Output.ndjson:
        session.printer.format = Output.ndjson  # a table or an array never ends
    session.printer.many(islice(found, limit), ["seq", "op", "id", "version", "data", "at"])
