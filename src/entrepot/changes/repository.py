"""SQL for the change log.

Appending is one statement: bump the dataset's head (taking its row lock
until commit), insert the change with the new seq, and queue a NOTIFY that
PostgreSQL delivers at commit to every replica's feed waiters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from entrepot.store.types import Conn, Executor

CHANNEL = "entrepot_changes"

APPEND = f"""
WITH head AS (
    UPDATE feed_heads SET last_seq = last_seq + 1 WHERE dataset_id = $1 RETURNING last_seq
), wake AS (
    SELECT pg_notify('{CHANNEL}', $1::text)
)
INSERT INTO changes (dataset_id, seq, op, record_id, version, data)
SELECT $1, head.last_seq, $2, $3, $4, $5::jsonb FROM head, wake
RETURNING seq
"""

APPEND_MANY = f"""
WITH head AS (
    UPDATE feed_heads SET last_seq = last_seq + cardinality($3::text[])
    WHERE dataset_id = $1 RETURNING last_seq
), wake AS (
    SELECT pg_notify('{CHANNEL}', $1::text)
)
INSERT INTO changes (dataset_id, seq, op, record_id, version, data)
SELECT $1, head.last_seq - cardinality($3::text[]) + c.n, $2, c.id, c.version, c.data::jsonb
FROM head, wake,
     unnest($3::text[], $4::bigint[], $5::text[]) WITH ORDINALITY AS c(id, version, data, n)
"""


async def create_head(conn: Conn, dataset_id: int) -> None:
    await conn.execute("INSERT INTO feed_heads (dataset_id) VALUES ($1)", dataset_id)


async def append(
    conn: Conn, dataset_id: int, op: str, record_id: str, version: int, data: str | None
) -> int:
    seq: int = await conn.fetchval(APPEND, dataset_id, op, record_id, version, data)
    return seq


async def append_many(
    conn: Conn,
    dataset_id: int,
    op: str,
    ids: Sequence[str],
    versions: Sequence[int],
    data: Sequence[str | None],
) -> None:
    """Append a batch in one round trip, seqs in list order."""
    if ids:
        await conn.execute(APPEND_MANY, dataset_id, op, ids, versions, data)


async def head(conn: Executor, dataset_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT last_seq, min_seq FROM feed_heads WHERE dataset_id = $1", dataset_id
    )


async def head_seq(conn: Executor, dataset_id: int) -> int:
    seq: int | None = await conn.fetchval(
        "SELECT last_seq FROM feed_heads WHERE dataset_id = $1", dataset_id
    )
    return seq or 0


async def read(conn: Executor, sql: str, args: list[Any]) -> list[asyncpg.Record]:
    return await conn.fetch(sql, *args)


COMPACTION_LOCK = 0x6665_6564  # "feed": with the dataset id, one compactor per dataset


async def try_compaction_lock(conn: Conn, dataset_id: int) -> bool:
    """Transaction-scoped, so no session state outlives the batch (pooled connections)."""
    taken: bool = await conn.fetchval(
        "SELECT pg_try_advisory_xact_lock($1, $2)", COMPACTION_LOCK, dataset_id % 2**31
    )
    return taken


async def compactable_datasets(conn: Executor) -> list[int]:
    """Datasets holding more than their newest change: the only ones compaction can touch."""
    rows = await conn.fetch(
        "SELECT dataset_id FROM feed_heads WHERE last_seq - min_seq > 1 ORDER BY dataset_id"
    )
    return [row["dataset_id"] for row in rows]


async def compaction_target(conn: Executor, dataset_id: int, retention_seconds: float) -> int:
    """The highest seq compaction may drop: past retention, never the newest change (0: none).

    ``at`` is the writing transaction's start, so it is not strictly monotonic in seq;
    everything up to the newest expired seq goes, keeping the kept log a suffix.
    """
    target: int | None = await conn.fetchval(
        """
        SELECT least(h.last_seq - 1, coalesce((
            SELECT max(seq) FROM changes
            WHERE dataset_id = $1 AND at < now() - make_interval(secs => $2)), 0))
        FROM feed_heads h WHERE h.dataset_id = $1
        """,
        dataset_id,
        float(retention_seconds),
    )
    return target or 0


async def compact(conn: Conn, dataset_id: int, upto: int, batch: int) -> int:
    """Drop the oldest ``batch`` changes with seq <= ``upto``; min_seq := the highest dropped.

    Deletes in seq order, so the kept log is always exactly the seqs above min_seq.
    The head's row lock is taken by the last step of this one statement; run it in
    its own short transaction so writers of the dataset wait for it only briefly.
    Returns how many changes were dropped.
    """
    dropped: int | None = await conn.fetchval(
        """
        WITH gone AS (
            DELETE FROM changes WHERE dataset_id = $1 AND seq IN (
                SELECT seq FROM changes WHERE dataset_id = $1 AND seq <= $2
                ORDER BY seq LIMIT $3)
            RETURNING seq
        ), horizon AS (
            UPDATE feed_heads SET min_seq = greatest(min_seq, (SELECT max(seq) FROM gone))
            WHERE dataset_id = $1 AND EXISTS (SELECT 1 FROM gone)
        )
        SELECT count(*) FROM gone
        """,
        dataset_id,
        upto,
        batch,
    )
    return dropped or 0
