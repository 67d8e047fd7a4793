"""SQL for webhooks, their feed cursors and the delivery queue."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from entrepot.store.types import Conn, Executor
from entrepot.store.work import plan_for_values

CHANNEL = "entrepot_webhooks"
SUBSCRIPTIONS = "subscriptions"  # payload: re-read which datasets to watch
OPEN = "('pending', 'delivering')"

WEBHOOK_COLUMNS = """
    w.id, w.app_id, a.org_id, w.url, w.events, w.disabled_at, w.disabled_reason,
    CASE WHEN w.previous_secret_until > now() THEN w.previous_secret_until END
        AS previous_secret_expires_at,
    w.created_at, w.updated_at, w.removed_datasets::text AS removed_datasets,
    coalesce((SELECT array_agg(d.name ORDER BY wd.position)
              FROM webhook_datasets wd JOIN datasets d ON d.id = wd.dataset_id
              WHERE wd.webhook_id = w.id), '{}') AS datasets
"""

DELIVERY_COLUMNS = """
    d.id, d.webhook_id, d.message_id, ds.name AS dataset, d.seq, d.record_id, d.event, d.status,
    d.attempts, CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at,
    d.last_attempt_at, d.last_status_code, d.last_error, d.last_response, d.payload,
    d.created_at, d.delivered_at, d.n
"""


# --- subscriptions ---------------------------------------------------------


async def insert_webhook(
    conn: Conn, app_id: uuid.UUID, url: str, events: list[str], secret: str
) -> uuid.UUID:
    webhook_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO webhooks (app_id, url, events, secret) VALUES ($1, $2, $3, $4) RETURNING id",
        app_id,
        url,
        events,
        secret,
    )
    return webhook_id


async def set_datasets(conn: Conn, webhook_id: uuid.UUID, dataset_ids: Sequence[int]) -> list[int]:
    """Follow exactly ``dataset_ids``; a newly followed dataset starts at its current head.

    Returns the datasets no longer followed.
    """
    removed: list[int] = [
        r["dataset_id"]
        for r in await conn.fetch(
            "DELETE FROM webhook_datasets WHERE webhook_id = $1 AND NOT dataset_id = ANY($2) "
            "RETURNING dataset_id",
            webhook_id,
            list(dataset_ids),
        )
    ]
    await conn.execute(
        """
        INSERT INTO webhook_datasets (webhook_id, dataset_id, cursor_seq, position)
        SELECT $1, t.id, coalesce(h.last_seq, 0), t.n
        FROM unnest($2::bigint[]) WITH ORDINALITY AS t(id, n)
        LEFT JOIN feed_heads h ON h.dataset_id = t.id
        ON CONFLICT (webhook_id, dataset_id) DO UPDATE SET position = excluded.position
        """,
        webhook_id,
        list(dataset_ids),
    )
    return removed


async def get_webhook(
    conn: Executor, webhook_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    suffix = " FOR UPDATE OF w" if lock else ""
    return await conn.fetchrow(
        f"SELECT {WEBHOOK_COLUMNS} FROM webhooks w JOIN apps a ON a.id = w.app_id "
        f"WHERE w.id = $1{suffix}",
        webhook_id,
    )


async def list_webhooks(
    conn: Executor, app_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""
        SELECT {WEBHOOK_COLUMNS} FROM webhooks w JOIN apps a ON a.id = w.app_id
        WHERE w.app_id = $1 AND ($2::timestamptz IS NULL OR (w.created_at, w.id) > ($2, $3))
        ORDER BY w.created_at, w.id LIMIT $4
        """,
        app_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )


async def update_webhook(
    conn: Conn, webhook_id: uuid.UUID, *, url: str | None, events: list[str] | None
) -> None:
    await conn.execute(
        "UPDATE webhooks SET url = coalesce($2, url), events = coalesce($3, events), "
        "updated_at = now() WHERE id = $1",
        webhook_id,
        url,
        events,
    )


async def disable(conn: Conn, webhook_id: uuid.UUID, reason: str) -> int:
    """Disable the webhook and cancel its unfinished deliveries; returns how many."""
    await conn.execute(
        "UPDATE webhooks SET disabled_at = coalesce(disabled_at, now()), disabled_reason = $2, "
        "updated_at = now() WHERE id = $1",
        webhook_id,
        reason,
    )
    status: str = await conn.execute(
        f"UPDATE webhook_deliveries SET status = 'cancelled', lease = NULL, locked_until = NULL "
        f"WHERE webhook_id = $1 AND status IN {OPEN}",
        webhook_id,
    )
    return int(status.split()[-1])


async def enable(conn: Conn, webhook_id: uuid.UUID) -> int:
    """Re-enable the webhook and revive its cancelled deliveries of datasets it still follows
    (the one its receiver answered 410 to among them), due now, in their order."""
    await conn.execute(
        "UPDATE webhooks SET disabled_at = NULL, disabled_reason = NULL, updated_at = now() "
        "WHERE id = $1",
        webhook_id,
    )
    status: str = await conn.execute(
        """
        UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now(),
               attempts = 0
        WHERE d.webhook_id = $1 AND d.status = 'cancelled'
          AND EXISTS (SELECT 1 FROM webhook_datasets f
                      WHERE f.webhook_id = d.webhook_id AND f.dataset_id = d.dataset_id)
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o
                          WHERE o.webhook_id = d.webhook_id AND o.dataset_id = d.dataset_id
                            AND o.record_id = d.record_id AND o.seq = d.seq
                            AND o.status IN ('pending', 'delivering'))
        """,
        webhook_id,
    )
    return int(status.split()[-1])


async def cancel_for_datasets(conn: Conn, webhook_id: uuid.UUID, dataset_ids: list[int]) -> None:
    await conn.execute(
        f"UPDATE webhook_deliveries SET status = 'cancelled', lease = NULL, locked_until = NULL "
        f"WHERE webhook_id = $1 AND dataset_id = ANY($2) AND status IN {OPEN}",
        webhook_id,
        dataset_ids,
    )


async def delete_webhook(conn: Conn, webhook_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM webhooks WHERE id = $1", webhook_id)


async def rotate_secret(
    conn: Conn, webhook_id: uuid.UUID, secret: str, overlap_seconds: int
) -> datetime | None:
    until: datetime | None = await conn.fetchval(
        """
        UPDATE webhooks SET
            previous_secret = CASE WHEN $3 > 0 THEN secret END,
            previous_secret_until = CASE WHEN $3 > 0 THEN now() + make_interval(secs => $3) END,
            secret = $2, updated_at = now()
        WHERE id = $1 RETURNING previous_secret_until
        """,
        webhook_id,
        secret,
        float(overlap_seconds),
    )
    return until


async def app_for_dispatch(conn: Executor, app_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, org_id, scopes FROM apps WHERE id = $1 AND disabled_at IS NULL", app_id
    )


# --- dispatch: feed -> deliveries -----------------------------------------


async def pairs_behind(conn: Executor) -> list[asyncpg.Record]:
    """Active (webhook, dataset) pairs whose cursor is behind the dataset's head."""
    return await conn.fetch(
        """
        SELECT wd.webhook_id, wd.dataset_id, ds.name AS dataset, w.app_id, w.events,
               a.org_id, a.scopes
        FROM webhook_datasets wd
        JOIN webhooks w ON w.id = wd.webhook_id AND w.disabled_at IS NULL
        JOIN apps a ON a.id = w.app_id AND a.disabled_at IS NULL
        JOIN datasets ds ON ds.id = wd.dataset_id
        JOIN feed_heads h ON h.dataset_id = wd.dataset_id
        WHERE h.last_seq > wd.cursor_seq
        ORDER BY wd.webhook_id, wd.dataset_id
        """
    )


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


async def advance_cursor(conn: Conn, webhook_id: uuid.UUID, dataset_id: int, seq: int) -> None:
    await conn.execute(
        "UPDATE webhook_datasets SET cursor_seq = greatest(cursor_seq, $3) "
        "WHERE webhook_id = $1 AND dataset_id = $2",
        webhook_id,
        dataset_id,
        seq,
    )


async def enqueue(
    conn: Conn,
    webhook_id: uuid.UUID,
    dataset_id: int,
    *,
    seqs: Sequence[int],
    record_ids: Sequence[str],
    events: Sequence[str],
    message_ids: Sequence[str],
    payloads: Sequence[str],
    delay_seconds: float,
) -> int:
    """Queue deliveries (skipping events already queued and unfinished).

    The caller wakes the workers (:func:`wake_workers`) once it has committed:
    a NOTIFY inside the transaction would hold PostgreSQL's notify lock to the end.
    """
    if not seqs:
        return 0
    status: str = await conn.execute(
        """
        INSERT INTO webhook_deliveries
            (webhook_id, dataset_id, seq, record_id, event, message_id, payload, next_attempt_at)
        SELECT $1, $2, t.seq, t.record_id, t.event, t.message_id, t.payload,
               now() + make_interval(secs => $8)
        FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
            AS t(seq, record_id, event, message_id, payload)
        ORDER BY t.seq
        ON CONFLICT (webhook_id, dataset_id, record_id, seq)
            WHERE status IN ('pending', 'delivering') DO NOTHING
        """,
        webhook_id,
        dataset_id,
        list(seqs),
        list(record_ids),
        list(events),
        list(message_ids),
        list(payloads),
        float(delay_seconds),
    )
    return int(status.split()[-1])


async def wake_workers(conn: Executor) -> None:
    await conn.execute(f"SELECT pg_notify('{CHANNEL}', '')")


async def announce_subscriptions(conn: Executor) -> None:
    """Tell every replica's dispatcher (at commit) that a webhook's datasets changed."""
    await conn.execute(f"SELECT pg_notify('{CHANNEL}', '{SUBSCRIPTIONS}')")


# --- delivery --------------------------------------------------------------

CLAIM = f"""
WITH next AS (
    SELECT d.id FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id AND w.disabled_at IS NULL
    JOIN apps a ON a.id = w.app_id AND a.disabled_at IS NULL
    WHERE ((d.status = 'pending' AND d.next_attempt_at <= now())
           OR (d.status = 'delivering' AND d.locked_until < now()))
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries e
          WHERE e.webhook_id = d.webhook_id AND e.dataset_id = d.dataset_id
            AND e.record_id = d.record_id AND e.status IN {OPEN} AND e.seq < d.seq)
    ORDER BY d.next_attempt_at
    LIMIT $3
    FOR UPDATE OF d SKIP LOCKED
), claimed AS (
    UPDATE webhook_deliveries d
    SET status = 'delivering', lease = $1, locked_until = now() + make_interval(secs => $2)
    FROM next, webhooks w
    WHERE d.id = next.id AND w.id = d.webhook_id
    RETURNING d.id, d.webhook_id, d.message_id, d.payload, d.attempts, d.seq, d.dataset_id,
              d.next_attempt_at, w.url, w.secret,
              CASE WHEN w.previous_secret_until > now() THEN w.previous_secret END
                  AS previous_secret
)
SELECT * FROM claimed ORDER BY next_attempt_at, seq
"""


async def claim(
    conn: Conn, lease: uuid.UUID, lease_seconds: float, limit: int = 1
) -> list[asyncpg.Record]:
    """Claim up to ``limit`` due deliveries in one statement, oldest due first, under one lease.

    Only the earliest unfinished delivery of a record is claimable (the NOT
    EXISTS), so a batch holds at most one delivery per record, and never one
    whose predecessor is pending or in flight: a record's events still go out
    one at a time, in seq order. Rows another claimer holds are skipped.

    The query is re-planned every time. The queue swings from empty to
    thousands of rows within seconds. A plan cached while it was nearly empty
    (found by bench/webhooks.py: a nested-loop anti-join) made every claim scan
    the whole queue, stalling delivery at ~2/s for a minute until autovacuum's
    ANALYZE; a custom plan per claim costs well under a millisecond and adapts
    at once. ``conn`` is in a transaction (the setting is local to it).
    """
    await plan_for_values(conn)
    return await conn.fetch(CLAIM, lease, float(lease_seconds), limit)


async def seconds_until_due(conn: Executor) -> float | None:
    value: float | None = await conn.fetchval(
        f"SELECT extract(epoch FROM min(CASE WHEN status = 'pending' THEN next_attempt_at "
        f"ELSE locked_until END) - now())::float8 FROM webhook_deliveries WHERE status IN {OPEN}"
    )
    return value


async def finish(
    conn: Executor,
    delivery_id: uuid.UUID,
    lease: uuid.UUID,
    *,
    status: str,
    status_code: int | None,
    error: str | None,
    response: str | None,
    retry_in: float | None,
) -> bool:
    """Record one attempt's outcome, if this worker still holds the delivery's lease.

    A finished delivery (not a retry) wakes the workers of every replica: the
    record's next event may be claimable now.
    """
    done: str = await conn.execute(
        f"""
        UPDATE webhook_deliveries SET
            status = $3, attempts = attempts + 1, last_attempt_at = now(),
            last_status_code = $4, last_error = $5, last_response = $6,
            next_attempt_at = CASE WHEN $7::float8 IS NULL THEN next_attempt_at
                                   ELSE now() + make_interval(secs => $7) END,
            delivered_at = CASE WHEN $3 = 'delivered' THEN now() END,
            lease = NULL, locked_until = NULL
        FROM (SELECT CASE WHEN $3 <> 'pending' THEN pg_notify('{CHANNEL}', '') END) AS wake
        WHERE id = $1 AND lease = $2 AND status = 'delivering'
        """,
        delivery_id,
        lease,
        status,
        status_code,
        error,
        response,
        retry_in,
    )
    return done.endswith(" 1")


async def backlog(conn: Executor, stuck_after: float) -> asyncpg.Record:
    """Queue depth, oldest unfinished age, and whether claimable work has waited too long.

    A delivery waiting behind an earlier one for the same record, or on a
    disabled webhook or app, is not stuck: it is not claimable.
    """
    row = await conn.fetchrow(
        f"""
        SELECT
            (SELECT count(*) FROM webhook_deliveries WHERE status IN {OPEN}) AS depth,
            coalesce((SELECT extract(epoch FROM now() - min(created_at))
                      FROM webhook_deliveries WHERE status IN {OPEN}), 0)::float8 AS oldest_age,
            EXISTS (
                SELECT 1 FROM webhook_deliveries d
                JOIN webhooks w ON w.id = d.webhook_id AND w.disabled_at IS NULL
                JOIN apps a ON a.id = w.app_id AND a.disabled_at IS NULL
                WHERE d.status IN {OPEN}
                  AND d.next_attempt_at < now() - make_interval(secs => $1)
                  AND (d.status = 'pending' OR d.locked_until < now())
                  AND NOT EXISTS (
                      SELECT 1 FROM webhook_deliveries e
                      WHERE e.webhook_id = d.webhook_id AND e.dataset_id = d.dataset_id
                        AND e.record_id = d.record_id AND e.status IN {OPEN} AND e.seq < d.seq)
            ) AS stuck
        """,
        float(stuck_after),
    )
    assert row is not None
    return row


async def purge_finished(conn: Executor, older_than_seconds: float, batch: int) -> int:
    """Forget delivered and cancelled deliveries past the log's retention (one batch)."""
    status: str = await conn.execute(
        """
        DELETE FROM webhook_deliveries WHERE id IN (
            SELECT id FROM webhook_deliveries
            WHERE status IN ('delivered', 'cancelled')
              AND created_at < now() - make_interval(secs => $1)
            LIMIT $2)
        """,
        float(older_than_seconds),
        batch,
    )
    return int(status.split()[-1])


# --- the delivery log ------------------------------------------------------


async def list_deliveries(
    conn: Executor,
    webhook_id: uuid.UUID,
    *,
    status: str | None,
    before: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
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


async def get_delivery(
    conn: Executor, webhook_id: uuid.UUID, delivery_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    suffix = " FOR UPDATE OF d" if lock else ""
    return await conn.fetchrow(
        f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d "
        f"JOIN datasets ds ON ds.id = d.dataset_id WHERE d.webhook_id = $1 AND d.id = $2{suffix}",
        webhook_id,
        delivery_id,
    )


async def requeue(conn: Conn, delivery_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), "
        "delivered_at = NULL WHERE id = $1",
        delivery_id,
    )


async def has_open_duplicate(conn: Executor, row: asyncpg.Record) -> bool:
    found: bool = await conn.fetchval(
        f"""
        SELECT EXISTS (SELECT 1 FROM webhook_deliveries
                       WHERE webhook_id = $1 AND message_id = $2 AND status IN {OPEN})
        """,
        row["webhook_id"],
        row["message_id"],
    )
    return found


async def feed_lag(conn: Executor) -> list[asyncpg.Record]:
    """How far each active subscription's enqueue cursor trails its dataset's feed head."""
    return await conn.fetch(
        """
        SELECT wd.webhook_id, d.name AS dataset, h.last_seq - wd.cursor_seq AS lag
        FROM webhook_datasets wd
        JOIN webhooks w ON w.id = wd.webhook_id AND w.disabled_at IS NULL
        JOIN datasets d ON d.id = wd.dataset_id
        JOIN feed_heads h ON h.dataset_id = wd.dataset_id
        """
    )
