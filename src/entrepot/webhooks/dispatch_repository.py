"""SQL for turning the feed into deliveries: the (webhook, dataset) cursors, the
enqueueing, and how far each cursor trails its feed.

Rows come back as :class:`PairBehind` and :class:`FeedLag`, never as string-keyed records.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from entrepot.store.types import Conn, Executor


@dataclass(frozen=True, slots=True)
class PairBehind:
    """An active (webhook, dataset) pair whose cursor trails the feed, with the
    webhook's events and its app's authority."""

    webhook_id: uuid.UUID
    dataset_id: int
    dataset: str
    app_id: uuid.UUID
    events: list[str]
    org_id: uuid.UUID
    scopes: list[str]
    cursor_seq: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> PairBehind:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class FeedLag:
    webhook_id: uuid.UUID
    dataset: str
    lag: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> FeedLag:
        return cls(*row)


async def pairs_behind(conn: Executor) -> list[PairBehind]:
    """Active (webhook, dataset) pairs whose cursor is behind the dataset's head."""
    rows = await conn.fetch(
        """
        SELECT wd.webhook_id, wd.dataset_id, ds.name AS dataset, w.app_id, w.events,
               a.org_id, a.scopes, wd.cursor_seq
        FROM webhook_datasets wd
        JOIN webhooks w ON w.id = wd.webhook_id AND w.disabled_at IS NULL
        JOIN apps a ON a.id = w.app_id AND a.disabled_at IS NULL
        JOIN datasets ds ON ds.id = wd.dataset_id
        JOIN feed_heads h ON h.dataset_id = wd.dataset_id
        WHERE h.last_seq > wd.cursor_seq
        ORDER BY wd.dataset_id, w.app_id, wd.cursor_seq, wd.webhook_id
        """
    )
    return [PairBehind.of(r) for r in rows]


async def followed_datasets(conn: Executor) -> list[int]:
    rows = await conn.fetch(
        "SELECT DISTINCT wd.dataset_id FROM webhook_datasets wd "
        "JOIN webhooks w ON w.id = wd.webhook_id WHERE w.disabled_at IS NULL"
    )
    return [r["dataset_id"] for r in rows]


async def lock_cursor(
    conn: Conn, webhook_id: uuid.UUID, dataset_id: int, *, wait: bool = False
) -> int | None:
    """The cursor, row-locked until commit; None when another replica holds it (or it is gone)."""
    skip = "" if wait else " SKIP LOCKED"
    seq: int | None = await conn.fetchval(
        "SELECT cursor_seq FROM webhook_datasets WHERE webhook_id = $1 AND dataset_id = $2 "
        f"FOR UPDATE{skip}",
        webhook_id,
        dataset_id,
    )
    return seq


async def lock_cursors(
    conn: Conn, dataset_id: int, webhook_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """These webhooks' cursors on the dataset, row-locked until commit; those another
    replica holds (or that are gone) are left out."""
    rows = await conn.fetch(
        "SELECT webhook_id, cursor_seq FROM webhook_datasets "
        "WHERE dataset_id = $1 AND webhook_id = ANY($2::uuid[]) "
        "ORDER BY webhook_id FOR UPDATE SKIP LOCKED",
        dataset_id,
        list(webhook_ids),
    )
    return {r["webhook_id"]: r["cursor_seq"] for r in rows}


async def advance_cursors(
    conn: Conn, dataset_id: int, webhook_ids: Sequence[uuid.UUID], seq: int
) -> None:
    await conn.execute(
        "UPDATE webhook_datasets SET cursor_seq = greatest(cursor_seq, $3) "
        "WHERE dataset_id = $1 AND webhook_id = ANY($2::uuid[])",
        dataset_id,
        list(webhook_ids),
        seq,
    )


async def enqueue(
    conn: Conn,
    dataset_id: int,
    *,
    webhook_ids: Sequence[uuid.UUID],
    seqs: Sequence[int],
    record_ids: Sequence[str],
    events: Sequence[str],
    message_ids: Sequence[str],
    payloads: Sequence[str],
    delay_seconds: float,
) -> int:
    """Queue deliveries, for one webhook or many (skipping events already queued and
    unfinished).

    The caller wakes the workers (:func:`wake_workers`) once it has committed:
    a NOTIFY inside the transaction would hold PostgreSQL's notify lock to the end.

    An event queued behind its record's retry is due no sooner than the retry
    (the record's earliest unfinished event's time, which is its retry's when it is
    waiting for one; :data:`entrepot.webhooks.queue_repository.FINISH_MANY` holds
    back those queued before), so claims need not read it until then. Looked up in
    webhook_deliveries_open_idx's own order, which no other index serves.
    """
    if not seqs:
        return 0
    status: str = await conn.execute(
        """
        INSERT INTO webhook_deliveries
            (webhook_id, dataset_id, seq, record_id, event, message_id, payload, next_attempt_at)
        SELECT t.webhook_id, $1, t.seq, t.record_id, t.event, t.message_id, t.payload,
               greatest(now() + make_interval(secs => $8), (
                   SELECT e.next_attempt_at FROM webhook_deliveries e
                   WHERE e.webhook_id = t.webhook_id AND e.dataset_id = $1
                     AND e.record_id = t.record_id AND e.status IN ('pending', 'delivering')
                   ORDER BY e.webhook_id, e.dataset_id, e.record_id, e.seq
                   LIMIT 1))
        FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
            AS t(webhook_id, seq, record_id, event, message_id, payload)
        ORDER BY t.seq, t.webhook_id
        ON CONFLICT (webhook_id, dataset_id, record_id, seq)
            WHERE status IN ('pending', 'delivering') DO NOTHING
        """,
        dataset_id,
        list(webhook_ids),
        list(seqs),
        list(record_ids),
        list(events),
        list(message_ids),
        list(payloads),
        float(delay_seconds),
    )
    return int(status.split()[-1])


async def feed_lag(conn: Executor) -> list[FeedLag]:
    """How far each active subscription's enqueue cursor trails its dataset's feed head."""
    rows = await conn.fetch(
        """
        SELECT wd.webhook_id, d.name AS dataset, h.last_seq - wd.cursor_seq AS lag
        FROM webhook_datasets wd
        JOIN webhooks w ON w.id = wd.webhook_id AND w.disabled_at IS NULL
        JOIN datasets d ON d.id = wd.dataset_id
        JOIN feed_heads h ON h.dataset_id = wd.dataset_id
        """
    )
    return [FeedLag.of(r) for r in rows]
