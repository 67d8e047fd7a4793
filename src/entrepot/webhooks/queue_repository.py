"""SQL for the delivery queue: claims under a lease, outcomes, the backlog, purging;
and the channel that wakes the delivery workers and the dispatchers.

Rows come back as :class:`Job` and :class:`Backlog`, never as string-keyed records.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from entrepot.store.types import Conn, Executor
from entrepot.store.work import plan_for_values

CHANNEL = "entrepot_webhooks"
SUBSCRIPTIONS = "subscriptions"  # payload: re-read which datasets to watch
OPEN = "('pending', 'delivering')"


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery, with what its attempt needs: where, and the secrets to sign with."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    message_id: str
    payload: str
    attempts: int
    seq: int
    dataset_id: int
    next_attempt_at: datetime
    url: str
    secret: str
    previous_secret: str | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> Job:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class Backlog:
    """Queue depth, the oldest unfinished delivery's age (seconds), and whether
    claimable work has waited too long."""

    depth: int
    oldest_age: float
    stuck: bool

    @classmethod
    def of(cls, row: asyncpg.Record) -> Backlog:
        return cls(*row)


async def wake_workers(conn: Executor) -> None:
    await conn.execute(f"SELECT pg_notify('{CHANNEL}', '')")


async def announce_subscriptions(conn: Executor) -> None:
    """Tell every replica's dispatcher (at commit) that a webhook's datasets changed."""
    await conn.execute(f"SELECT pg_notify('{CHANNEL}', '{SUBSCRIPTIONS}')")


# The record's earliest unfinished delivery (``d`` is unfinished itself, so this is at
# most its seq). Written as the first row in webhook_deliveries_open_idx's own order,
# not as NOT EXISTS: with statistics taken while the queue was nearly empty, the
# planner answered a NOT EXISTS along webhook_deliveries_webhook_due_idx, walking all
# of the webhook's open deliveries for every candidate; this form only that index
# serves without a sort, whatever the statistics say.
EARLIEST_OPEN = f"""
    SELECT e.seq FROM webhook_deliveries e
    WHERE e.webhook_id = d.webhook_id AND e.dataset_id = d.dataset_id
      AND e.record_id = d.record_id AND e.status IN {OPEN}
    ORDER BY e.webhook_id, e.dataset_id, e.record_id, e.seq
    LIMIT 1"""

CLAIM = f"""
WITH caps AS (
    SELECT w.id AS webhook_id, coalesce(c.cap, $4) AS cap
    FROM webhooks w
    JOIN apps a ON a.id = w.app_id AND a.disabled_at IS NULL
    LEFT JOIN unnest($5::uuid[], $6::int[]) AS c(webhook_id, cap) ON c.webhook_id = w.id
    WHERE w.disabled_at IS NULL
), next AS (
    SELECT n.id, n.next_attempt_at,
           row_number() OVER (PARTITION BY caps.webhook_id ORDER BY n.next_attempt_at) AS turn
    FROM caps
    CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
        WHERE d.webhook_id = caps.webhook_id AND d.status IN {OPEN}
          AND d.next_attempt_at <= now() AND (d.status = 'pending' OR d.locked_until < now())
          AND d.seq = ({EARLIEST_OPEN})
        ORDER BY d.next_attempt_at
        LIMIT caps.cap
        FOR UPDATE OF d SKIP LOCKED
    ) AS n
    WHERE caps.cap > 0
    ORDER BY turn, n.next_attempt_at
    LIMIT $3
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
    conn: Conn,
    lease: uuid.UUID,
    lease_seconds: float,
    limit: int = 1,
    *,
    per_endpoint: int | None = None,
    caps: Mapping[uuid.UUID, int] | None = None,
) -> list[Job]:
    """Claim up to ``limit`` due deliveries in one statement, under one lease: each
    webhook's oldest due first, taken in turns across webhooks (every webhook's first,
    then every webhook's second...), so when ``limit`` binds, one endpoint's backlog of
    older events never takes the batch from another's first.

    At most ``caps[webhook]`` of one webhook's (``per_endpoint`` for a webhook
    not in ``caps``; ``limit`` if that is None too): each endpoint's free
    slots, so a slow endpoint's backlog never fills the batch. The due rows are
    read per webhook along ``webhook_deliveries_webhook_due_idx``, so a claim
    costs what it takes, not what the queue holds.

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
    given = dict(caps or {})
    await plan_for_values(conn)
    rows = await conn.fetch(
        CLAIM,
        lease,
        float(lease_seconds),
        limit,
        limit if per_endpoint is None else per_endpoint,
        list(given),
        list(given.values()),
    )
    return [Job.of(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's result, to record under the lease it was made with."""

    delivery_id: uuid.UUID
    lease: uuid.UUID
    status: str  # delivered, pending (a retry, in retry_in seconds), failed
    status_code: int | None
    error: str | None
    response: str | None
    retry_in: float | None


FINISH_MANY = f"""
WITH o AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::text[],
                         $6::text[], $7::float8[])
        AS o(id, lease, status, status_code, error, response, retry_in)
), done AS (
    UPDATE webhook_deliveries d SET
        status = o.status, attempts = d.attempts + 1, last_attempt_at = now(),
        last_status_code = o.status_code, last_error = o.error, last_response = o.response,
        next_attempt_at = CASE WHEN o.retry_in IS NULL THEN d.next_attempt_at
                               ELSE now() + make_interval(secs => o.retry_in) END,
        delivered_at = CASE WHEN o.status = 'delivered' THEN now() END,
        lease = NULL, locked_until = NULL
    FROM o
    WHERE d.id = o.id AND d.lease = o.lease AND d.status = 'delivering'
    RETURNING d.id, d.status, d.webhook_id, d.dataset_id, d.record_id, d.seq, d.next_attempt_at
), retrying AS (
    SELECT webhook_id, dataset_id, record_id, min(seq) AS seq, max(next_attempt_at) AS not_before
    FROM done WHERE status = 'pending' GROUP BY webhook_id, dataset_id, record_id
), held_back AS (
    UPDATE webhook_deliveries f SET next_attempt_at = r.not_before
    FROM retrying r
    WHERE f.webhook_id = r.webhook_id AND f.dataset_id = r.dataset_id
      AND f.record_id = r.record_id AND f.status = 'pending' AND f.seq > r.seq
      AND f.next_attempt_at < r.not_before
), wake AS (
    SELECT pg_notify('{CHANNEL}', '')
    FROM (SELECT 1 FROM done WHERE status <> 'pending' LIMIT 1) AS finished
)
SELECT done.id FROM done LEFT JOIN (SELECT count(*) FROM wake) AS woken ON true
"""


async def finish_many(conn: Executor, outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
    """Record many attempts' outcomes in one statement: each only if its lease still
    holds. The deliveries recorded (the others' leases had expired or were handed back).

    A finished delivery (not a retry) among them wakes the workers of every
    replica, once: the next event of its record may be claimable now.

    A retry holds its record's later events back until its own time
    (``held_back``): they could not go before it anyway, and left due they would
    be read, and found blocked, by every claim until then. That was what made an
    endpoint that is down slow everyone: its events pile up behind retries, and
    each claim, for every endpoint, walked all of them (bench/webhooks.py, outage).
    The enqueuer does the same for events queued behind a retry
    (:func:`entrepot.webhooks.dispatch_repository.enqueue`).
    """
    if not outcomes:
        return set()
    rows = await conn.fetch(
        FINISH_MANY,
        [o.delivery_id for o in outcomes],
        [o.lease for o in outcomes],
        [o.status for o in outcomes],
        [o.status_code for o in outcomes],
        [o.error for o in outcomes],
        [o.response for o in outcomes],
        [o.retry_in for o in outcomes],
    )
    return {r["id"] for r in rows}


async def release(conn: Executor, claims: list[tuple[uuid.UUID, uuid.UUID]]) -> int:
    """End these (delivery, lease) claims now: each is claimable again at once, unless
    its attempt finished after all (its lease is gone). How many were handed back."""
    status: str = await conn.execute(
        "UPDATE webhook_deliveries d SET locked_until = now() "
        "FROM unnest($1::uuid[], $2::uuid[]) AS c(id, lease) "
        "WHERE d.id = c.id AND d.lease = c.lease AND d.status = 'delivering'",
        [delivery for delivery, _ in claims],
        [lease for _, lease in claims],
    )
    return int(status.rsplit(" ", 1)[-1])


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
    """Record one attempt's outcome, if this worker still holds the delivery's lease
    (:func:`finish_many` for one: a finished delivery wakes every replica's workers)."""
    outcome = Outcome(delivery_id, lease, status, status_code, error, response, retry_in)
    return delivery_id in await finish_many(conn, [outcome])


HOLD_BACK = f"""
WITH due AS (
    SELECT d.id, ({EARLIEST_OPEN.replace("e.seq FROM", "e.next_attempt_at FROM")}) AS not_before
    FROM webhooks w
    CROSS JOIN LATERAL (
        SELECT d.id, d.webhook_id, d.dataset_id, d.record_id FROM webhook_deliveries d
        WHERE d.webhook_id = w.id AND d.status IN {OPEN} AND d.status = 'pending'
          AND d.next_attempt_at <= now()
    ) AS d
), held AS (
    SELECT f.id, due.not_before FROM webhook_deliveries f JOIN due ON due.id = f.id
    WHERE due.not_before > now() AND f.status = 'pending'
    FOR UPDATE OF f SKIP LOCKED
)
UPDATE webhook_deliveries f SET next_attempt_at = held.not_before
FROM held
WHERE f.id = held.id
"""


async def hold_back_behind_retries(conn: Executor) -> int:
    """Queued events still due while their record's earliest one waits for a retry: due
    with that retry now; how many. Retries and the enqueuer hold events back as they
    go, except one queued while its record's attempt was being recorded (each saw the
    other unfinished); this heals those within a stats round instead of their being
    read by every claim until the retry. Rows another statement holds are skipped
    (the next round takes them), so it never waits on an outcome being written."""
    status: str = await conn.execute(HOLD_BACK)
    return int(status.rsplit(" ", 1)[-1])


async def backlog(conn: Executor, stuck_after: float) -> Backlog:
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
    return Backlog.of(row)


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
