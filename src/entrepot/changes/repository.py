"""SQL for the change log.

A write appends its change with ``seq`` NULL (pending) and takes no lock the
other writers need; a sequencing pass (:func:`sequence`) later numbers the
visible pending changes of a dataset after its head, in insertion order, in
one statement that holds the head's row lock only for itself. Readers read
sequenced changes only, and run a pass first, so a change acknowledged to its
writer is in the feed for the next reader. Each change carries the record's
previous state too, which narrowed readers need to tell what they could see
before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import asyncpg

from entrepot.store.types import Conn, Executor

CHANNEL = "entrepot_changes"

# Lock the dataset's head first (passes queue here, and take locks in one order:
# head, then changes in insertion order), then the pending changes this
# statement can see, skipping those a pass that committed meanwhile numbered;
# move the head past them and number them after it. One statement: the head's
# lock lasts as long as it does.
SEQUENCE = """
WITH head AS (
    SELECT last_seq FROM feed_heads WHERE dataset_id = $1 FOR UPDATE
), pending AS (
    SELECT c.n FROM changes c, head
    WHERE c.dataset_id = $1 AND c.seq IS NULL ORDER BY c.n FOR UPDATE OF c
), numbered AS (
    SELECT n, row_number() OVER (ORDER BY n) AS k, count(*) OVER () AS total FROM pending
), moved AS (
    UPDATE feed_heads SET last_seq = last_seq + (SELECT count(*) FROM pending)
    WHERE dataset_id = $1 AND EXISTS (SELECT 1 FROM pending) RETURNING last_seq
)
UPDATE changes c SET seq = moved.last_seq - numbered.total + numbered.k
FROM numbered, moved
WHERE c.dataset_id = $1 AND c.n = numbered.n
"""


TOUCHED = "entrepot_touched"  # the transaction's list of records a bulk write touched


async def start_tracking(conn: Conn) -> None:
    """A transaction-local list of the records a bulk write touches, in order.

    Bulk writes record ids here, each with the record as it was before the
    transaction first touched it (``prev``, NULL when it did not exist), and
    emit one pending change per record, with its final state, at the very end
    (:func:`append_tracked`).
    """
    await conn.execute(
        f"CREATE TEMP TABLE {TOUCHED} ("
        " ord bigint GENERATED ALWAYS AS IDENTITY, id text PRIMARY KEY, prev jsonb"
        ") ON COMMIT DROP"
    )


async def track_new(conn: Conn, ids: Sequence[str]) -> None:
    """Note records this transaction created (they did not exist before it)."""
    if ids:
        await conn.execute(
            f"INSERT INTO {TOUCHED} (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            list(ids),
        )


async def append_tracked(conn: Conn, dataset_id: int, table: str) -> None:
    """One pending change per touched record, carrying its final state, in first-touch
    order (their insertion numbers are taken in that order)."""
    await conn.execute(
        f"""
        INSERT INTO changes (dataset_id, op, record_id, version, data, prev)
        SELECT $1, 'upsert', r.id, r.version, r.data, t.prev
        FROM {TOUCHED} t JOIN {table} r ON r.dataset_id = $1 AND r.id = t.id
        ORDER BY t.ord
        """,
        dataset_id,
    )


def append_from(source: str, dataset_id: int, op: Literal["upsert", "delete"]) -> str:
    """The INSERT of one pending change per row of the CTE ``source`` (columns ``id``,
    ``version``, ``data`` and ``prev``, jsonb), for a write that appends its change in its
    own statement. The change is inserted after the record's row lock was taken (it reads
    the write's output), which is what keeps a record's changes in commit order."""
    assert op in ("upsert", "delete")
    return (
        "INSERT INTO changes (dataset_id, op, record_id, version, data, prev) "
        f"SELECT {int(dataset_id)}, '{op}', id, version, data, prev FROM {source}"
    )


async def create_head(conn: Conn, dataset_id: int) -> None:
    await conn.execute("INSERT INTO feed_heads (dataset_id) VALUES ($1)", dataset_id)


async def sequence(conn: Executor, dataset_id: int) -> int:
    """Number the dataset's visible pending changes; how many it numbered (0: none)."""
    status: str = await conn.execute(SEQUENCE, dataset_id)
    return int(status.split()[-1])


async def pending_datasets(conn: Executor) -> list[int]:
    """Datasets with changes written but not yet numbered."""
    rows = await conn.fetch("SELECT DISTINCT dataset_id FROM changes WHERE seq IS NULL")
    return [row[0] for row in rows]


async def head(conn: Executor, dataset_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT last_seq, min_seq FROM feed_heads WHERE dataset_id = $1", dataset_id
    )


async def head_seq(conn: Executor, dataset_id: int) -> int:
    seq: int | None = await conn.fetchval(
        "SELECT last_seq FROM feed_heads WHERE dataset_id = $1", dataset_id
    )
    return seq or 0


async def changed_since(conn: Executor, dataset_id: int, seq: int) -> list[str]:
    """The ids of the records changed by the changes after ``seq``, numbered or pending."""
    rows = await conn.fetch(
        "SELECT DISTINCT record_id FROM changes "
        "WHERE dataset_id = $1 AND (seq > $2 OR seq IS NULL)",
        dataset_id,
        seq,
    )
    return [row[0] for row in rows]


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
    its own short transaction so sequencing passes wait for it only briefly.
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
