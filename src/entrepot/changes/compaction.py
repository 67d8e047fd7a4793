"""Compaction: drop changes older than the retention period, keep the feed's horizon true.

Every replica runs it from its housekeeping loop. Each batch is one short
transaction holding a transaction-scoped advisory lock on its dataset (no
session state, so pooled connections stay clean): while one replica compacts
a dataset the others skip it. A batch deletes the oldest changes in seq order
and moves ``feed_heads.min_seq`` to the highest seq it deleted, atomically, so
a reader either sees a change or a horizon that tells it (410) the change is
gone. The newest change is always kept, so ``last_seq`` stays readable.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import structlog

from entrepot.changes import repository as repo

log = structlog.get_logger("entrepot.changes")

BATCH = 5_000


async def compact_dataset(
    pool: asyncpg.Pool,
    dataset_id: int,
    retention_seconds: float,
    batch: int = BATCH,
    progress: Callable[[], None] = lambda: None,
) -> int:
    """Compact one dataset's change log; returns how many changes were dropped.

    Stops early (returning what it did) when another replica holds the dataset.
    ``progress`` is called after every batch (the housekeeping loop's heartbeat).
    """
    removed = 0
    target: int | None = None
    await repo.sequence(pool, dataset_id)  # the log's horizon is judged on what is numbered
    while True:
        async with pool.acquire() as conn, conn.transaction():
            if not await repo.try_compaction_lock(conn, dataset_id):
                return removed
            if target is None:
                target = await repo.compaction_target(conn, dataset_id, retention_seconds)
            if target <= 0:
                return removed
            dropped = await repo.compact(conn, dataset_id, target, batch)
        progress()
        removed += dropped
        if dropped < batch:
            return removed


async def compact_all(
    pool: asyncpg.Pool,
    retention_seconds: float,
    batch: int = BATCH,
    progress: Callable[[], None] = lambda: None,
) -> int:
    """Compact every dataset's change log; returns how many changes were dropped in all."""
    for dataset_id in await repo.pending_datasets(pool):
        await repo.sequence(pool, dataset_id)  # heads first, so the horizons are judged on them
        progress()
    total = 0
    for dataset_id in await repo.compactable_datasets(pool):
        dropped = await compact_dataset(pool, dataset_id, retention_seconds, batch, progress)
        if dropped:
            log.info("changes_compacted", dataset_id=dataset_id, count=dropped)
        total += dropped
    return total
