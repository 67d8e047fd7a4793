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
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class PlannedPool:
    """Request connections whose every statement is planned for its own values
    (``plan_cache_mode = force_custom_plan`` for the session): a statement whose best
    plan depends on its values (a filtered list) runs here as it is, one round trip,
    where on the request pool it needs a read-only transaction that asks for such a
    plan (``store/work.py: plan_for_values``), three. Taken from the request pool's
    share of the budget, never added to it."""

    pool: MeteredPool


def planned_share(settings: Settings) -> int:
    """How many of ``ENTREPOT_POOL_MAX_SIZE`` the planned pool takes: at most
    ``ENTREPOT_PLANNED_POOL_SIZE``, leaving the request pool one at least; none through
    a transaction pooler, which takes no session settings (and where nothing is
    prepared for long, so every statement is planned for its values already)."""
    if settings.pooler == "transaction":
        return 0
    return max(0, min(settings.planned_pool_size, settings.pool_max_size - 1))


async def create_pool(
    settings: Settings,
    dsn: str,
    *,
    size: int | None = None,
    name: str = "entrepot",
    planned: bool = False,
) -> MeteredPool:
    """The request pool (``settings.pool_*_size``, less the planned pool's share), the
    planned pool (``planned``: its share, opened as needed), or one of ``size``
    connections opened as needed (the bulk pool). ``name`` is PostgreSQL's
    ``application_name``; the metrics name the pool ``requests``, ``planned`` or
    ``bulk``."""
    pooled = settings.pooler == "transaction"
    timeouts = {
        "statement_timeout": str(settings.statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_MS),
    }
    share = planned_share(settings)
    if planned:
        label, min_size, max_size = "planned", 0, share
    elif size is None:
        max_size = settings.pool_max_size - share
        label, min_size = "requests", min(settings.pool_min_size, max_size)
    else:
        label, min_size, max_size = "bulk", 0, size
    pool = MeteredPool(
        dsn,
        name=label,
        min_size=min_size,
        max_size=max_size,
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
            **({"plan_cache_mode": "force_custom_plan"} if planned else {}),
        },
    )
    await pool
    return pool
