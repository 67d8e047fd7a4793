"""The connection budget: the most PostgreSQL connections a worker, and a replica, may open.

A worker opens its two pools (``ENTREPOT_POOL_MAX_SIZE`` for requests,
``ENTREPOT_BULK_POOL_SIZE`` for imports and exports) and one dedicated
connection for each LISTEN loop below, held for its whole life. A replica
(one ``entrepot serve``) runs ``ENTREPOT_WORKERS`` of them. Before its workers
start, ``serve`` opens a few connections of its own (the capacity check, the
migrations and their lock watch, the bootstrap), one step after the other and
closed before the first worker starts: fewer than one worker's listeners, so
they never add to the budget.

Through a transaction-mode pooler (``ENTREPOT_POOLER=transaction``) the pools'
connections are the pooler's clients and only the dedicated ones reach the
server directly (``ENTREPOT_DIRECT_DATABASE_URL``). Pure arithmetic: the start-up
check (capacity.py), ``entrepot budget`` and a gauge read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from entrepot.settings import Settings

Pooler = Literal["none", "transaction"]


@dataclass(frozen=True, slots=True)
class Dedicated:
    """A connection a worker holds apart from its pools, for as long as it runs."""

    name: str  # its application_name is entrepot-listen-<name>
    purpose: str


# Every dedicated connection a worker opens. tests/unit/test_connection_budget.py fails
# when the code opens one that is not here; tests/integration/test_connection_budget.py
# counts what a started worker holds on the server.
WORKER_DEDICATED: tuple[Dedicated, ...] = (
    Dedicated("changes", "LISTEN entrepot_changes: wakes long polls, event streams, webhooks"),
    Dedicated("invalidation", "LISTEN entrepot_invalidate: drops caches other replicas changed"),
    Dedicated("webhooks", "LISTEN entrepot_webhooks: wakes the delivery worker"),
)

# The most connections `serve` holds at once before its workers start: the migrations'
# lock holder and its lock watch (the capacity check and the bootstrap come alone).
START_UP_PEAK = 2


@dataclass(frozen=True, slots=True)
class Budget:
    workers: int
    request_pool: int
    bulk_pool: int
    pooler: Pooler = "none"
    dedicated: int = len(WORKER_DEDICATED)

    @classmethod
    def of(cls, settings: Settings, workers: int | None = None) -> Budget:
        """The budget ``settings`` give (``workers``: serve's --workers, if given)."""
        return cls(
            workers=workers or settings.workers,
            request_pool=settings.pool_max_size,
            bulk_pool=settings.bulk_pool_size,
            pooler=settings.pooler,
        )

    @property
    def pooled_per_worker(self) -> int:
        return self.request_pool + self.bulk_pool

    @property
    def per_worker(self) -> int:
        return self.pooled_per_worker + self.dedicated

    @property
    def per_replica(self) -> int:
        return self.workers * self.per_worker

    @property
    def direct_per_worker(self) -> int:
        """What a worker opens on the server itself (all of it, without a pooler)."""
        return self.dedicated if self.pooler == "transaction" else self.per_worker

    @property
    def direct_per_replica(self) -> int:
        return self.workers * self.direct_per_worker

    @property
    def through_pooler_per_replica(self) -> int:
        """The pooler's client connections a replica may open (0 without a pooler)."""
        return self.workers * self.pooled_per_worker if self.pooler == "transaction" else 0

    def formula(self) -> str:
        """How ``direct_per_replica`` is made, in the settings' terms."""
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        listeners = f"{self.dedicated} listeners"
        if self.pooler == "transaction":
            return f"{workers} x {listeners}; the pools go through the pooler"
        return (
            f"{workers} x ({self.request_pool} request pool + {self.bulk_pool} bulk pool"
            f" + {listeners})"
        )


def describe(budget: Budget, replicas: int = 1) -> list[str]:
    """``entrepot budget``'s lines: the budget per worker, per replica, for ``replicas``."""
    names = ", ".join(d.name for d in WORKER_DEDICATED)
    pools = (
        f"{budget.request_pool} request pool (ENTREPOT_POOL_MAX_SIZE) + {budget.bulk_pool} "
        "bulk pool (ENTREPOT_BULK_POOL_SIZE)"
    )
    workers = f"{budget.workers} worker{'s' if budget.workers != 1 else ''} (ENTREPOT_WORKERS)"
    if budget.pooler == "transaction":
        lines = [
            f"per worker: {budget.per_worker} = {pools} through the pooler"
            f" + {budget.dedicated} listeners ({names}) to PostgreSQL itself",
            f"per replica, {workers}: {budget.direct_per_replica} to PostgreSQL itself"
            f" (ENTREPOT_DIRECT_DATABASE_URL), {budget.through_pooler_per_replica} to the"
            " pooler (ENTREPOT_DATABASE_URL)",
        ]
        if replicas > 1:
            lines.append(
                f"{replicas} replicas: {replicas * budget.direct_per_replica} to PostgreSQL"
                f" itself, {replicas * budget.through_pooler_per_replica} to the pooler"
            )
        return lines
    lines = [
        f"per worker: {budget.per_worker} = {pools} + {budget.dedicated} listeners ({names})",
        f"per replica, {workers}: {budget.per_replica}",
    ]
    if replicas > 1:
        lines.append(f"{replicas} replicas: {replicas * budget.per_replica}")
    return lines
