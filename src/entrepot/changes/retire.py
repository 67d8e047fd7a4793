"""Dropping the change logs of deleted datasets, whole.

Deleting a dataset queues its log (a trigger on ``datasets`` inserts it into
``retired_change_logs`` in the deleting transaction: migration 0007). Each
replica's feed waker then detaches the dataset's partition of ``changes``
concurrently and drops it (:func:`entrepot.changes.repository.drop_log`):
no row of it is deleted one by one, and no other dataset's writer or reader
waits. A claim on the queued row (a lease) keeps two replicas from doing the
same one; a replica that dies mid-way leaves the lease to run out, and the
next one finishes the job.

Until then the partition stays attached, out of everyone's way: the feed of
a deleted dataset answers 404 (its head is gone with it), a dataset created
again under the same name has a new id, hence a partition and a feed of its
own, and ids are never reused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import asyncpg
import structlog

from entrepot.changes import repository as repo
from entrepot.store_failures import STORE_FAILURES

log = structlog.get_logger("entrepot.changes")

# A claim outlives a detach under the default statement timeout (30 s). Should one run
# longer, a second replica's attempt waits for it on the log's lock, then finishes it.
LEASE_SECONDS = 120.0
RETRY_SECONDS = 10.0  # after a failure (a detach that timed out waiting, say)


async def retire_logs(pool: asyncpg.Pool, progress: Callable[[], None] = lambda: None) -> int:
    """Detach and drop the queued logs of deleted datasets; how many were dropped.
    ``progress`` is called before each one (a detach may wait up to the statement timeout)."""
    dropped = 0
    while (dataset_id := await repo.claim_retired_log(pool, LEASE_SECONDS)) is not None:
        progress()
        try:
            async with pool.acquire() as conn:
                await repo.drop_log(conn, dataset_id)
            await repo.forget_retired_log(pool, dataset_id)
        except STORE_FAILURES as exc:
            log.warning(
                "change_log_drop_failed",
                dataset_id=dataset_id,
                error=f"{type(exc).__name__}: {exc}",
                retry_in_seconds=RETRY_SECONDS,
            )
            # Tried again soon; if even this fails, once the lease has run out.
            with contextlib.suppress(*STORE_FAILURES):
                await repo.release_retired_log(pool, dataset_id, RETRY_SECONDS)
            return dropped
        log.info("change_log_dropped", dataset_id=dataset_id)
        dropped += 1
    return dropped
