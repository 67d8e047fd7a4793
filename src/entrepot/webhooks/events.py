"""Feed changes as webhook events: the event type, the message id and the signed body.

The body's ``data`` is the change exactly as the app's own feed shows it (the
bytes :func:`entrepot.changes.service.render_change` produced for the app's
read view) with the dataset name added, so a receiver can resume from the
feed at ``data.seq``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from entrepot.principal import Principal


def event_type(change: dict[str, Any]) -> str:
    if change["op"] == "delete":
        return "record.deleted"
    return "record.created" if change["version"] == 1 else "record.updated"


def message_id(webhook_id: uuid.UUID, dataset_id: int, seq: int) -> str:
    """Stable per (webhook, event): retries, manual retries and replays share it."""
    return "msg_" + uuid.uuid5(webhook_id, f"{dataset_id}:{seq}").hex


def render(event: str, dataset: str, change: bytes, at: str) -> bytes:
    return b"".join(
        (
            b'{"type":',
            orjson.dumps(event),
            b',"timestamp":',
            orjson.dumps(at),
            b',"data":{"dataset":',
            orjson.dumps(dataset),
            b",",
            change[1:],  # the change object without its opening brace
            b"}",
        )
    )


def app_principal(
    app_id: uuid.UUID, org_id: uuid.UUID, scopes: list[str], webhook_id: uuid.UUID
) -> Principal:
    """The webhook's app as a reader: what it may see is what its webhook may send."""
    return Principal(
        "app",
        f"app:{app_id}",
        f"webhook:{webhook_id}",
        frozenset(scopes),
        app_id=app_id,
        org_id=org_id,
    )


def parse(changes: list[bytes]) -> list[tuple[dict[str, Any], bytes]]:
    """Feed items with their text: parsed once however many webhooks they go to."""
    return [(orjson.loads(raw), raw) for raw in changes]


@dataclass
class Batch:
    """Deliveries to queue on one dataset, for one webhook or several, in seq order each."""

    webhook_ids: list[uuid.UUID] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    record_ids: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    payloads: list[str] = field(default_factory=list)

    def add_parsed(
        self,
        changes: list[tuple[dict[str, Any], bytes]],
        *,
        webhook_id: uuid.UUID,
        dataset_id: int,
        dataset: str,
        wanted: frozenset[str],
        after: int,
    ) -> None:
        """The wanted events among ``changes`` (parsed by :func:`parse`) past ``after``."""
        for change, raw in changes:
            if change["seq"] <= after:
                continue
            event = event_type(change)
            if event not in wanted:
                continue
            self.webhook_ids.append(webhook_id)
            self.seqs.append(change["seq"])
            self.record_ids.append(change["id"])
            self.events.append(event)
            self.message_ids.append(message_id(webhook_id, dataset_id, change["seq"]))
            self.payloads.append(render(event, dataset, raw, change["at"]).decode())
