"""The asyncpg pools: the one every request borrows from, and the bulk pool.

Connections carry no session state (no temp tables, no session advisory locks,
no LISTEN; those get dedicated connections), so the pool skips asyncpg's
reset-on-release query, which costs about a third of read throughput.

Through a transaction-mode pooler (``ENTREPOT_POOLER=transaction``) each
transaction, and each statement outside one, may run on another server
connection: asyncpg keeps no statement cache there (named prepared statements
would be missing on the next one; PgBouncer 1.18 does not track them) and the
startup parameters are only ``application_name`` (PgBouncer refuses others).
The timeouts then come from the role or the database (docs/operations.md,
"Through PgBouncer").

Every acquire is timed (``entrepot_db_pool_acquire_seconds``): time spent
waiting for a free connection is the first sign a pool is too small, before
requests time out.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from prometheus_client import Histogram

from entrepot.settings import Settings
from entrepot.store.pool_metrics import ACQUIRE_SECONDS

STATEMENT_CACHE_SIZE = 100  # asyncpg's default
IDLE_IN_TRANSACTION_MS = 60_000


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


class MeteredPool(asyncpg.Pool):
    """asyncpg's pool, timing each acquire (``acquire()``, ``fetch()``... all pass here).

    ``_acquire`` is asyncpg's one private entry behind every public way to take
    a connection; tests/e2e/test_operator_metrics.py fails if it stops being so.
    """

    def __init__(self, *args: Any, name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = name
        self._waits: Histogram = ACQUIRE_SECONDS.labels(name)

    async def _acquire(self, timeout: float | None) -> PoolConnectionProxy:  # noqa: ASYNC109
        started = time.perf_counter()
        try:
            conn: PoolConnectionProxy = await super()._acquire(timeout)  # type: ignore[misc]
            return conn
        finally:
            self._waits.observe(time.perf_counter() - started)


async def create_pool(
    settings: Settings, dsn: str, *, size: int | None = None, name: str = "entrepot"
) -> MeteredPool:
    """The request pool (``settings.pool_*_size``), or one of ``size`` connections that
    opens them only when needed (the bulk pool). ``name`` is PostgreSQL's
    ``application_name``; the metrics name the pool ``requests`` or ``bulk``."""
    pooled = settings.pooler == "transaction"
    timeouts = {
        "statement_timeout": str(settings.statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_MS),
    }
    pool = MeteredPool(
        dsn,
        name="requests" if size is None else "bulk",
        min_size=settings.pool_min_size if size is None else 0,
        max_size=settings.pool_max_size if size is None else size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        reset=_no_reset,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        statement_cache_size=0 if pooled else STATEMENT_CACHE_SIZE,
        server_settings={
            "application_name": name,
            **({} if pooled else timeouts),
            # Plans are cached (PostgreSQL's default): planning the one-statement
            # record write again on every run cost as much as running it, and a
            # read by id three times its run (bench/RESULTS.md). Statements whose
            # plan depends on their values ask for it in their transaction
            # (``store/work.py: plan_for_values``: record and audit lists and
            # exports, webhook claims); statements on the partitioned change log
            # name their dataset's partition, so no cached plan spans them all.
            # Through a pooler nothing is prepared for long: every statement is
            # planned for its values, correct and a little slower.
        },
    )
    await pool
    return pool
