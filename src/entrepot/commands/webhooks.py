"""``entrepot webhooks``: subscriptions, their deliveries, retries and replays."""

from __future__ import annotations

from enum import StrEnum
from itertools import islice
from typing import Annotated, Any

import typer

from entrepot.commands.errors import UsageProblem
from entrepot.commands.options import Limit, page_size
from entrepot.commands.session import Session, api_command

app = typer.Typer(
    rich_markup_mode=None,
    help="Webhooks: create (shows the signing secret once), deliveries, replay.",
)


class Event(StrEnum):
    created = "record.created"
    updated = "record.updated"
    deleted = "record.deleted"


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivering = "delivering"
    delivered = "delivered"
    failed = "failed"
    cancelled = "cancelled"


Webhook = Annotated[str, typer.Argument(metavar="WEBHOOK", help="Webhook id.", show_default=False)]
Events = Annotated[
    list[Event] | None,
    typer.Option("--event", help="An event to send; repeat [default: all three]."),
]


@api_command(app, "create")
def create(
    session: Session,
    application: Annotated[str, typer.Argument(metavar="APP", help="Application id.")],
    endpoint: Annotated[
        str, typer.Argument(metavar="ENDPOINT", help="The receiver's URL (http or https).")
    ],
    dataset: Annotated[list[str], typer.Option("--dataset", help="A dataset; repeat.")],
    event: Events = None,
) -> None:
    """Subscribe a URL to datasets' changes; the signing secret is shown only now."""
    created = session.api.webhooks.create(
        application,
        url=endpoint,
        datasets=dataset,
        events=[e.value for e in event] if event else None,
    )
    session.printer.one(created)


@api_command(app, "list")
def list_(
    session: Session,
    application: Annotated[str, typer.Argument(metavar="APP", help="Application id.")],
    limit: Limit = None,
) -> None:
    """List an application's webhooks."""
    found = session.api.webhooks.list(application, limit=page_size(limit))
    session.printer.many(islice(found, limit), ["id", "url", "datasets", "events", "disabled"])


@api_command(app, "get")
def get(session: Session, webhook: Webhook) -> None:
    """Show one webhook."""
    session.printer.one(session.api.webhooks.get(webhook))


@api_command(app, "patch")
def patch(
    session: Session,
    webhook: Webhook,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="A new receiver URL.")] = None,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="All its datasets; repeat.")
    ] = None,
    event: Annotated[
        list[Event] | None, typer.Option("--event", help="All its events; repeat.")
    ] = None,
    disabled: Annotated[bool | None, typer.Option("--disabled/--enabled")] = None,
) -> None:
    """Change a webhook: only the options given are sent."""
    changes: dict[str, Any] = {
        key: value
        for key, value in {
            "url": endpoint,
            "datasets": dataset,
            "events": [e.value for e in event] if event else None,
            "disabled": disabled,
        }.items()
        if value is not None
    }
    if not changes:
        raise UsageProblem("nothing to change: give at least one option (see --help)")
    session.printer.one(session.api.webhooks.update(webhook, **changes))


@api_command(app, "delete", output=False)
def delete(session: Session, webhook: Webhook) -> None:
    """Delete a webhook."""
    session.api.webhooks.delete(webhook)
    session.printer.done(f"Deleted webhook {webhook}")


@api_command(app, "deliveries")
def deliveries(
    session: Session,
    webhook: Webhook,
    status: Annotated[DeliveryStatus | None, typer.Option("--status")] = None,
    limit: Limit = None,
) -> None:
    """List a webhook's deliveries, newest first."""
    found = session.api.webhooks.deliveries(
        webhook, status=status.value if status else None, limit=page_size(limit)
    )
    session.printer.many(
        islice(found, limit),
        ["id", "event", "record_id", "seq", "status", "attempts", "last_status_code"],
    )


@api_command(app, "retry")
def retry(
    session: Session,
    webhook: Webhook,
    delivery: Annotated[str, typer.Argument(metavar="DELIVERY", help="Delivery id.")],
) -> None:
    """Send a delivery again now (a failed one, typically)."""
    session.printer.one(session.api.webhooks.retry_delivery(webhook, delivery))


@api_command(app, "replay")
def replay(
    session: Session,
    webhook: Webhook,
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset to replay.")],
    from_seq: Annotated[
        int, typer.Option("--from-seq", min=1, help="Deliver again the changes with seq >= this.")
    ],
) -> None:
    """Deliver a dataset's past changes again, from a feed position."""
    session.printer.one(session.api.webhooks.replay(webhook, dataset=dataset, from_seq=from_seq))


@api_command(app, "rotate-secret")
def rotate_secret(
    session: Session,
    webhook: Webhook,
    overlap: Annotated[
        int | None, typer.Option("--overlap", min=0, help="Seconds the old secret still signs.")
    ] = None,
) -> None:
    """A new signing secret, shown only now; both sign during the overlap."""
    session.printer.one(session.api.webhooks.rotate_secret(webhook, overlap_seconds=overlap))
