"""Prometheus metrics of the database pools: how full each one is, how long callers wait.

Each worker has pools of its own, so in multiprocess mode the gauges are summed
over live workers (``livesum``): the replica's connections, as PostgreSQL sees
them. They are sampled every second rather than set on each acquire and
release, which keeps the request path to one histogram observation.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from prometheus_client import Gauge, Histogram

SAMPLE_SECONDS = 1.0

OPEN = Gauge(
    "entrepot_db_pool_connections",
    "Connections open in the pool (in use and idle)",
    ["pool"],
    multiprocess_mode="livesum",
)
IN_USE = Gauge(
    "entrepot_db_pool_in_use_connections",
    "Connections lent out by the pool",
    ["pool"],
    multiprocess_mode="livesum",
)
IDLE = Gauge(
    "entrepot_db_pool_idle_connections",
    "Connections open and waiting in the pool",
    ["pool"],
    multiprocess_mode="livesum",
)
MAX = Gauge(
    "entrepot_db_pool_max_connections",
    "The most connections the pool may open",
    ["pool"],
    multiprocess_mode="livesum",
)
BUDGET = Gauge(
    "entrepot_db_connection_budget",
    "The most connections the workers may open: pools and listeners (store/budget.py)",
    ["via"],
    multiprocess_mode="livesum",
)
ACQUIRE_SECONDS = Histogram(
    "entrepot_db_pool_acquire_seconds",
    "Time waited for a pooled connection, timed-out waits included",
    ["pool"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class Sized(Protocol):
    """What the sampler reads of a pool (asyncpg's public size methods, and our name)."""

    name: str

    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...
    def get_max_size(self) -> int: ...


def sample(pools: list[Sized]) -> None:
    for pool in pools:
        size, idle = pool.get_size(), pool.get_idle_size()
        OPEN.labels(pool.name).set(size)
        IN_USE.labels(pool.name).set(size - idle)
        IDLE.labels(pool.name).set(idle)
        MAX.labels(pool.name).set(pool.get_max_size())


def publish_budget(direct: int, through_pooler: int) -> None:
    """One worker's budget: ``via`` ``server`` (connections to PostgreSQL itself) and
    ``pooler`` (client connections to a transaction pooler, 0 without one)."""
    BUDGET.labels("server").set(direct)
    BUDGET.labels("pooler").set(through_pooler)


async def sample_forever(pools: list[Sized], every: float = SAMPLE_SECONDS) -> None:
    """The lifespan runs this as a task; ``aio.stop_tasks`` ends it."""
    while True:
        sample(pools)
        await asyncio.sleep(every)
