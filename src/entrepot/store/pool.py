"""The asyncpg pool every request borrows from.

Connections carry no session state (no temp tables, no session advisory locks,
no LISTEN; those get dedicated connections), so the pool skips asyncpg's
reset-on-release query, which costs about a third of read throughput.
"""

from __future__ import annotations

import asyncpg

from entrepot.settings import Settings


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


async def create_pool(
    settings: Settings, dsn: str, *, size: int | None = None, name: str = "entrepot"
) -> asyncpg.Pool:
    """The request pool (``settings.pool_*_size``), or one of ``size`` connections that
    opens them only when needed (the bulk pool)."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min_size if size is None else 0,
        max_size=settings.pool_max_size if size is None else size,
        reset=_no_reset,
        server_settings={
            "application_name": name,
            "statement_timeout": str(settings.statement_timeout_ms),
            "idle_in_transaction_session_timeout": "60000",
            # Plans are cached (PostgreSQL's default): planning the one-statement
            # record write again on every run cost as much as running it, and a
            # read by id three times its run (bench/RESULTS.md). Statements whose
            # plan depends on their values ask for it in their transaction
            # (``store/work.py: plan_for_values``: record and audit lists and
            # exports, webhook claims); statements on the partitioned change log
            # name their dataset's partition, so no cached plan spans them all.
        },
    )
    assert pool is not None
    return pool
