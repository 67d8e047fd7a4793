"""The plans every replica enforces, cached and refreshed on change."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

import asyncpg

from entrepot.components import Components
from entrepot.limits import repository as repo

DEFAULT_PLAN = "default"
PLANS_TOPIC = "plans"


@dataclass(frozen=True, slots=True)
class PlanLimits:
    name: str
    rate: float
    burst: int
    daily_quota: int | None
    monthly_quota: int | None


class PlanBook:
    """All plans in memory (there are few), reloaded when a NOTIFY says they
    changed or, as a safety net, after ``ttl`` seconds."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = 5.0) -> None:
        self.pool = pool
        self.ttl = ttl
        self._plans: dict[str, PlanLimits] = {}
        self._loaded_at = -math.inf
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._loaded_at = -math.inf

    def subscribe(self, parts: Components) -> None:
        parts.on_invalidate(lambda _topic: self.invalidate(), topics=[PLANS_TOPIC])

    async def get(self, name: str | None) -> PlanLimits | None:
        if time.monotonic() - self._loaded_at > self.ttl:
            async with self._lock:
                if time.monotonic() - self._loaded_at > self.ttl:
                    await self._reload()
        return self._plans.get(name or DEFAULT_PLAN) or self._plans.get(DEFAULT_PLAN)

    async def _reload(self) -> None:
        started = time.monotonic()
        rows = await repo.all_plans(self.pool)
        self._plans = {
            r.name: PlanLimits(r.name, r.rate_per_second, r.burst, r.daily_quota, r.monthly_quota)
            for r in rows
        }
        self._loaded_at = started
