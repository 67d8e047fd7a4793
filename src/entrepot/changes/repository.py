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

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import asyncpg

from entrepot.store.sql import changes_table
from entrepot.store.types import Conn, Executor

CHANNEL = "entrepot_changes"

# Every statement on the log names its dataset's partition (``changes_42``), never
# the partitioned parent with ``dataset_id = $1``: a plan PostgreSQL caches for the
# parent would lock every dataset's partition each time it runs (it prunes a
# generic plan only after locking), and plans are cached (``store/pool.py``).
# Inserts go through the parent (routed to the one partition when they run).


# Lock the dataset's head first (passes queue here, and take locks in one order:
# head, then changes in insertion order), then the pending changes this
# statement can see, skipping those a pass that committed meanwhile numbered;
# move the head past them and number them after it. One statement: the head's
# lock lasts as long as it does.
def sequence_sql(dataset_id: int) -> str:
    log = changes_table(dataset_id)
    return f"""
WITH head AS (
    SELECT last_seq FROM feed_heads WHERE dataset_id = $1 FOR UPDATE
), pending AS (
    SELECT c.n FROM {log} c, head
    WHERE c.dataset_id = $1 AND c.seq IS NULL ORDER BY c.n FOR UPDATE OF c
), numbered AS (
    SELECT n, row_number() OVER (ORDER BY n) AS k, count(*) OVER () AS total FROM pending
), moved AS (
    UPDATE feed_heads SET last_seq = last_seq + (SELECT count(*) FROM pending)
    WHERE dataset_id = $1 AND EXISTS (SELECT 1 FROM pending) RETURNING last_seq
)
UPDATE {log} c SET seq = moved.last_seq - numbered.total + numbered.k
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
    """Number the dataset's visible pending changes; how many it numbered (0: none;
    also for a dataset deleted meanwhile, whose log is gone)."""
    try:
        status: str = await conn.execute(sequence_sql(dataset_id), dataset_id)
    except asyncpg.UndefinedTableError:
        if isinstance(conn, asyncpg.Pool) or not conn.is_in_transaction():
            return 0
        raise  # the caller's transaction is aborted: it must hear why
    return int(status.split()[-1])


PENDING_PER_QUERY = 64  # datasets asked about in one statement


def pending_sql(dataset_ids: Sequence[int]) -> str:
    """Which of ``dataset_ids`` have pending changes: one probe of each partition."""
    return " UNION ALL ".join(
        f"SELECT {int(i)}::bigint WHERE EXISTS (SELECT 1 FROM {changes_table(i)} WHERE seq IS NULL)"
        for i in dataset_ids
    )


async def pending_datasets(conn: Executor, among: Iterable[int] | None = None) -> list[int]:
    """The datasets among ``among`` (default: every dataset) with changes written but not
    yet numbered.

    The log has a partition per dataset, and a question that names no dataset opens
    (and locks) every partition and its indexes: with thousands of datasets, a second
    of planning and more locks than PostgreSQL's lock table may hold. So each statement
    names the partitions of at most :data:`PENDING_PER_QUERY` datasets. ``conn`` is in
    autocommit (a partition dropped meanwhile is skipped).
    """
    if among is None:
        rows = await conn.fetch("SELECT dataset_id FROM feed_heads")
        among = [row[0] for row in rows]
    ids = sorted(set(among))
    found: list[int] = []
    for start in range(0, len(ids), PENDING_PER_QUERY):
        found.extend(await _pending_among(conn, ids[start : start + PENDING_PER_QUERY]))
    return sorted(found)


async def _pending_among(conn: Executor, ids: list[int]) -> list[int]:
    try:
        return [row[0] for row in await conn.fetch(pending_sql(ids))]
    except asyncpg.UndefinedTableError:  # one was deleted meanwhile: ask one by one
        found = []
        for dataset_id in ids:
            try:
                if await conn.fetchval(pending_sql([dataset_id])) is not None:
                    found.append(dataset_id)
            except asyncpg.UndefinedTableError:
                continue
        return found


async def head(conn: Executor, dataset_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT last_seq, min_seq FROM feed_heads WHERE dataset_id = $1", dataset_id
    )


async def head_seq(conn: Executor, dataset_id: int) -> int:
    seq: int | None = await conn.fetchval(
        "SELECT last_seq FROM feed_heads WHERE dataset_id = $1", dataset_id
    )
    return seq or 0


def changed_since_sql(dataset_id: int) -> str:
    return (
        f"SELECT DISTINCT record_id FROM {changes_table(dataset_id)} "
        "WHERE dataset_id = $1 AND (seq > $2 OR seq IS NULL)"
    )


async def changed_since(conn: Executor, dataset_id: int, seq: int) -> list[str]:
    """The ids of the records changed by the changes after ``seq``, numbered or pending."""
    rows = await conn.fetch(changed_since_sql(dataset_id), dataset_id, seq)
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


def compaction_target_sql(dataset_id: int) -> str:
    return f"""
SELECT least(h.last_seq - 1, coalesce((
    SELECT max(seq) FROM {changes_table(dataset_id)}
    WHERE dataset_id = $1 AND at < now() - make_interval(secs => $2)), 0))
FROM feed_heads h WHERE h.dataset_id = $1
"""


async def compaction_target(conn: Executor, dataset_id: int, retention_seconds: float) -> int:
    """The highest seq compaction may drop: past retention, never the newest change (0: none).

    ``at`` is the writing transaction's start, so it is not strictly monotonic in seq;
    everything up to the newest expired seq goes, keeping the kept log a suffix.
    """
    target: int | None = await conn.fetchval(
        compaction_target_sql(dataset_id), dataset_id, float(retention_seconds)
    )
    return target or 0


def compact_sql(dataset_id: int) -> str:
    log = changes_table(dataset_id)
    return f"""
WITH gone AS (
    DELETE FROM {log} WHERE dataset_id = $1 AND seq IN (
        SELECT seq FROM {log} WHERE dataset_id = $1 AND seq <= $2
        ORDER BY seq LIMIT $3)
    RETURNING seq
), horizon AS (
    UPDATE feed_heads SET min_seq = greatest(min_seq, (SELECT max(seq) FROM gone))
    WHERE dataset_id = $1 AND EXISTS (SELECT 1 FROM gone)
)
SELECT count(*) FROM gone
"""


async def compact(conn: Conn, dataset_id: int, upto: int, batch: int) -> int:
    """Drop the oldest ``batch`` changes with seq <= ``upto``; min_seq := the highest dropped.

    Deletes in seq order, so the kept log is always exactly the seqs above min_seq.
    The head's row lock is taken by the last step of this one statement; run it in
    its own short transaction so sequencing passes wait for it only briefly.
    Returns how many changes were dropped.
    """
    dropped: int | None = await conn.fetchval(compact_sql(dataset_id), dataset_id, upto, batch)
    return dropped or 0


# --- the logs of deleted datasets -------------------------------------------------


async def claim_retired_log(conn: Executor, lease_seconds: float) -> int | None:
    """A deleted dataset whose log is still to drop, claimed for ``lease_seconds`` (the
    other replicas leave it alone meanwhile; a crashed replica's claim runs out)."""
    dataset_id: int | None = await conn.fetchval(
        """
        UPDATE retired_change_logs SET claimed_until = now() + make_interval(secs => $1)
        WHERE dataset_id = (
            SELECT dataset_id FROM retired_change_logs
            WHERE claimed_until IS NULL OR claimed_until < now()
            ORDER BY retired_at, dataset_id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING dataset_id
        """,
        float(lease_seconds),
    )
    return dataset_id


async def release_retired_log(conn: Executor, dataset_id: int, retry_seconds: float) -> None:
    """Give a claim back, to be tried again in ``retry_seconds``."""
    await conn.execute(
        "UPDATE retired_change_logs SET claimed_until = now() + make_interval(secs => $2) "
        "WHERE dataset_id = $1",
        dataset_id,
        float(retry_seconds),
    )


async def forget_retired_log(conn: Executor, dataset_id: int) -> None:
    await conn.execute("DELETE FROM retired_change_logs WHERE dataset_id = $1", dataset_id)


PARTITION_STATE = """
SELECT t.oid IS NOT NULL AS present, i.inhrelid IS NOT NULL AS attached,
       coalesce(i.inhdetachpending, false) AS detaching
FROM (SELECT to_regclass($1) AS oid) t
LEFT JOIN pg_inherits i ON i.inhrelid = t.oid AND i.inhparent = 'changes'::regclass
"""


async def drop_log(conn: Conn, dataset_id: int) -> bool:
    """Detach a deleted dataset's partition of the log, then drop it; whether it was there.

    Outside any transaction: ``DETACH PARTITION ... CONCURRENTLY`` takes SHARE UPDATE
    EXCLUSIVE on ``changes``, so the other datasets' writers and readers never wait for it
    (a plain DETACH, or a DROP of the partition, would hold ACCESS EXCLUSIVE on the whole
    log), and waits instead for the transactions that use the log to end. It can be run
    again after anything: an interrupted detach is finished (``FINALIZE``), a finished one
    skipped. The detached table is dropped whole: its rows are never deleted one by one.
    """
    table = changes_table(dataset_id)
    state = await conn.fetchrow(PARTITION_STATE, table)
    assert state is not None
    if state["attached"]:
        how = "FINALIZE" if state["detaching"] else "CONCURRENTLY"
        await conn.execute(f"ALTER TABLE changes DETACH PARTITION {table} {how}")
    await conn.execute(f"DROP TABLE IF EXISTS {table}")
    return bool(state["present"])
