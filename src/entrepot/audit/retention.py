"""Keeping the audit log's monthly partitions: made ahead, dropped past retention.

Every replica's housekeeping calls :func:`maintain` (at start, then every ten
minutes). Both steps are functions in the store (migration 0007) that are
safe to run from several replicas at once: a partition made by one is seen
by the next, and one dropped is gone for all. Dropping is whole partitions
only, a month at a time: a row is kept for at least the retention, and at
most a month longer. Each dropped partition leaves an audit row saying so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from entrepot.audit import repository as repo
from entrepot.auditing.log import record

log = structlog.get_logger("entrepot.audit")

AHEAD_DAYS = 31  # this month's partition and the next one
ACTOR = "system:housekeeping"


async def maintain(pool: asyncpg.Pool, retention_days: int) -> list[str]:
    """Make the coming months' partitions; with ``retention_days`` (0: keep forever),
    drop those past it. Returns the partitions dropped."""
    made = await repo.prepare_partitions(pool, AHEAD_DAYS)
    if made:
        log.info("audit_partitions_made", partitions=made)
    if retention_days <= 0:
        return []
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    async with pool.acquire() as conn, conn.transaction():
        dropped = await repo.drop_partitions_before(conn, cutoff)
        for name in dropped:
            await record(
                conn,
                None,
                "audit.partition_dropped",
                f"audit_partition:{name}",
                actor=ACTOR,
                details={"retention_days": retention_days, "cutoff": cutoff.isoformat()},
            )
    if dropped:
        log.info("audit_partitions_dropped", partitions=dropped, retention_days=retention_days)
    return dropped
