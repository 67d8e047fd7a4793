"""``entrepot audit`` and ``entrepot usage``."""

from __future__ import annotations

import sys
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer

from entrepot.commands.inputs import moment
from entrepot.commands.options import Limit, page_size
from entrepot.commands.session import Session, api_command

audit = typer.Typer(
    rich_markup_mode=None, help="The audit log (admins): every change and every denied access."
)
# `entrepot usage APP`, a top-level command, merged into the root app.
commands = typer.Typer(rich_markup_mode=None)


class Outcome(StrEnum):
    success = "success"
    denied = "denied"
    failure = "failure"


class Granularity(StrEnum):
    hour = "hour"
    day = "day"


Actor = Annotated[str | None, typer.Option("--actor", help="Who: exact, or a prefix ending in *.")]
Action = Annotated[str | None, typer.Option("--action", help="e.g. dataset.created, or dataset.*.")]
Target = Annotated[
    str | None, typer.Option("--target", help="e.g. dataset:products, or dataset:*.")
]
OutcomeOption = Annotated[Outcome | None, typer.Option("--outcome")]
RequestId = Annotated[str | None, typer.Option("--request-id")]
Since = Annotated[str | None, typer.Option("--since", help="RFC 3339 time, inclusive.")]
Until = Annotated[str | None, typer.Option("--until", help="RFC 3339 time, exclusive.")]
Org = Annotated[str | None, typer.Option("--org", help="Only this organisation's entries.")]


def _filters(
    actor: str | None,
    action: str | None,
    target: str | None,
    outcome: Outcome | None,
    request_id: str | None,
    since: str | None,
    until: str | None,
    org: str | None,
) -> dict[str, Any]:
    """The audit filters as the SDK takes them (one place for list and export)."""
    return {
        "actor": actor,
        "action": action,
        "target": target,
        "outcome": outcome.value if outcome else None,
        "request_id": request_id,
        "since": moment(since, "--since"),
        "until": moment(until, "--until"),
        "org": org,
    }


@api_command(audit, "list")
def list_(
    session: Session,
    actor: Actor = None,
    action: Action = None,
    target: Target = None,
    outcome: OutcomeOption = None,
    request_id: RequestId = None,
    since: Since = None,
    until: Until = None,
    org: Org = None,
    limit: Limit = None,
) -> None:
    """List audit entries, newest first."""
    found = session.api.audit.list(
        **_filters(actor, action, target, outcome, request_id, since, until, org),
        limit=page_size(limit),
    )
    session.printer.many(
        islice(found, limit), ["at", "actor", "action", "target", "outcome", "status"]
    )


@api_command(audit, "export", output=False)
def export(
    session: Session,
    to: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write [default: stdout].")
    ] = None,
    actor: Actor = None,
    action: Action = None,
    target: Target = None,
    outcome: OutcomeOption = None,
    request_id: RequestId = None,
    since: Since = None,
    until: Until = None,
    org: Org = None,
) -> None:
    """Every matching entry as NDJSON, newest first, streamed to a file or stdout."""
    saved = session.api.audit.export(
        to if to is not None else sys.stdout.buffer,
        **_filters(actor, action, target, outcome, request_id, since, until, org),
    )
    if to is None:
        sys.stdout.buffer.flush()
    else:
        session.printer.done(f"Saved {saved.records:,} audit entries to {to}")


@api_command(commands, "whoami")
def whoami(session: Session) -> None:
    """Who the credential is: its kind, scopes, application or person, and grants."""
    session.printer.one(session.api.me())


@api_command(commands, "usage")
def usage(
    session: Session,
    app: Annotated[str, typer.Argument(metavar="APP", help="Application id.", show_default=False)],
    start: Annotated[
        str | None, typer.Option("--from", help="RFC 3339 time [default: the server's].")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="RFC 3339 time.")] = None,
    granularity: Annotated[Granularity | None, typer.Option("--granularity")] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Only the requests to this dataset.")
    ] = None,
) -> None:
    """An application's request counts by period, endpoint class, status and dataset."""
    found = session.api.apps.usage(
        app,
        start=moment(start, "--from"),
        end=moment(end, "--to"),
        granularity=granularity.value if granularity else None,
        dataset=dataset,
    )
    if session.printer.format.value == "table":
        session.printer.err.print(
            f"{found.app}: {found.total:,} requests from {found.start} to {found.end}",
            markup=False,
        )
        session.printer.many(found.data, ["period", "endpoint_class", "status", "dataset", "count"])
    else:
        session.printer.one(found)
