"""The figures of the admin console's health page, read where the platform already
computes them: readiness (``ops.endpoints.readiness``, as /readyz answers it), this
process's Prometheus metrics (as the metrics listener serves them), and PostgreSQL's
view of the server processes connected to it. Nothing is counted a second way.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.samples import Sample

from entrepot.components import Components
from entrepot.ops.endpoints import readiness
from entrepot.portal import health_repository as repo
from entrepot.store.work import reads
from entrepot.store_failures import STORE_FAILURES
from entrepot.webhooks.metrics import DELIVERIES, FEED_LAG, OLDEST_PENDING_AGE, QUEUE_DEPTH


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


def _samples(metric: MetricWrapperBase) -> list[Sample]:
    """The metric's samples in this process (its own collector only: no registry walk)."""
    return [sample for family in metric.collect() for sample in family.samples]


def _gauge(metric: MetricWrapperBase) -> float | None:
    found = _samples(metric)
    return found[0].value if found else None


def _lag() -> tuple[float, int]:
    values = [sample.value for sample in _samples(FEED_LAG)]
    return sum(values), sum(1 for v in values if v > 0)


def _deliveries() -> dict[str, float]:
    return {
        sample.labels.get("outcome", ""): sample.value
        for sample in _samples(DELIVERIES)
        if sample.name.endswith("_total")
    }


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
        queue_depth=_gauge(QUEUE_DEPTH),
        oldest_pending_seconds=_gauge(OLDEST_PENDING_AGE),
        feed_lag_events=lag,
        lagging_subscriptions=lagging,
        deliveries=_deliveries(),
    )
