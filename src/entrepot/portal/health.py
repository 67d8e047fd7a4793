"""The figures of the admin console's health page, read where the platform already
computes them: readiness (``ops.endpoints.readiness``, as /readyz answers it), this
process's Prometheus metrics (as the metrics listener serves them), and PostgreSQL's
view of the server processes connected to it. Nothing is counted a second way.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from prometheus_client import REGISTRY

from entrepot.components import Components
from entrepot.ops.endpoints import readiness
from entrepot.portal import health_repository as repo
from entrepot.store.work import reads
from entrepot.store_failures import STORE_FAILURES

QUEUE_DEPTH = "entrepot_webhook_queue_depth"
OLDEST_PENDING = "entrepot_webhook_oldest_pending_age_seconds"
FEED_LAG = "entrepot_webhook_feed_lag_events"
DELIVERIES = "entrepot_webhook_deliveries_total"


@dataclass(frozen=True, slots=True)
class Health:
    ready: bool
    checks: dict[str, str]
    server_processes: int | None  # None: the store did not answer
    queue_depth: float | None  # None: no delivery worker here has measured it yet
    oldest_pending_seconds: float | None
    feed_lag_events: float  # summed over every subscription and dataset
    lagging_subscriptions: int
    deliveries: dict[str, float]  # attempts by outcome, by this process since it started


def _sample(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


def _lag() -> tuple[float, int]:
    total, lagging = 0.0, 0
    for metric in REGISTRY.collect():
        if metric.name != FEED_LAG:
            continue
        for sample in metric.samples:
            total += sample.value
            lagging += sample.value > 0
    return total, lagging


def _deliveries() -> dict[str, float]:
    found: dict[str, float] = {}
    for metric in REGISTRY.collect():
        if metric.name + "_total" != DELIVERIES and metric.name != DELIVERIES:
            continue
        for sample in metric.samples:
            if sample.name == DELIVERIES:
                found[sample.labels.get("outcome", "")] = sample.value
    return found


async def _server_processes(pool: asyncpg.Pool) -> int | None:
    try:
        async with reads(pool) as reading:
            return await repo.server_processes(reading.conn)
    except STORE_FAILURES:  # the store is down: readiness says so already
        return None


async def measure(found: Components) -> Health:
    ready, checks = await readiness(found)
    lag, lagging = _lag()
    return Health(
        ready=ready,
        checks=checks,
        server_processes=await _server_processes(found.get(asyncpg.Pool))
        if checks.get("store") == "ok"
        else None,
        queue_depth=_sample(QUEUE_DEPTH),
        oldest_pending_seconds=_sample(OLDEST_PENDING),
        feed_lag_events=lag,
        lagging_subscriptions=lagging,
        deliveries=_deliveries(),
    )
