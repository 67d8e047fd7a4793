"""SQL for the delivery log: a webhook's deliveries as its owner sees them, and retries.

Rows come back as :class:`Delivery`, never as string-keyed records.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from entrepot.store.types import Conn, Executor
from entrepot.webhooks.queue_repository import OPEN

DELIVERY_COLUMNS = """
    d.id, d.webhook_id, d.message_id, ds.name AS dataset, d.seq, d.record_id, d.event, d.status,
    d.attempts, CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at,
    d.last_attempt_at, d.last_status_code, d.last_error, d.last_response, d.payload,
    d.created_at, d.delivered_at, d.n
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery (``DELIVERY_COLUMNS``); ``payload`` is its JSON text, ``n`` its place
    in the log (the cursor). ``next_attempt_at`` is None unless it is pending."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    message_id: str
    dataset: str
    seq: int
    record_id: str
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_response: str | None
    payload: str
    created_at: datetime
    delivered_at: datetime | None
    n: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> Delivery:
        return cls(*row)


async def list_deliveries(
    conn: Executor,
    webhook_id: uuid.UUID,
    *,
    status: str | None,
    before: int | None,
    limit: int,
) -> list[Delivery]:
    rows = await conn.fetch(
        f"""
        SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
        JOIN datasets ds ON ds.id = d.dataset_id
        WHERE d.webhook_id = $1 AND ($2::text IS NULL OR d.status = $2)
          AND ($3::bigint IS NULL OR d.n < $3)
        ORDER BY d.n DESC LIMIT $4
        """,
        webhook_id,
        status,
        before,
        limit,
    )
    return [Delivery.of(r) for r in rows]


async def get_delivery(
    conn: Executor, webhook_id: uuid.UUID, delivery_id: uuid.UUID, *, lock: bool = False
) -> Delivery | None:
    suffix = " FOR UPDATE OF d" if lock else ""
    row = await conn.fetchrow(
        f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d "
        f"JOIN datasets ds ON ds.id = d.dataset_id WHERE d.webhook_id = $1 AND d.id = $2{suffix}",
        webhook_id,
        delivery_id,
    )
    return None if row is None else Delivery.of(row)


async def requeue(conn: Conn, delivery_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), "
        "delivered_at = NULL WHERE id = $1",
        delivery_id,
    )


async def has_open_duplicate(conn: Executor, row: Delivery) -> bool:
    found: bool = await conn.fetchval(
        f"""
        SELECT EXISTS (SELECT 1 FROM webhook_deliveries
                       WHERE webhook_id = $1 AND message_id = $2 AND status IN {OPEN})
        """,
        row.webhook_id,
        row.message_id,
    )
    return found
