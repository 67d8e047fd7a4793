"""Admit or refuse each authenticated request by its caller's plan.

With Redis configured, one Lua script per request takes a token from the
caller's bucket and counts the request against its daily and monthly quotas,
atomically and on Redis's clock, so the limits hold across every replica.
Without Redis, or while Redis does not answer, each replica keeps buckets of
its own (a cluster of N replicas then admits up to N times the rate) and
counts quotas from the usage table plus what it admitted since it last
looked, so quotas hold to within one flush interval across replicas.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter

from entrepot.limits import repository as repo
from entrepot.limits.bucket import Decision, LocalBuckets, decide
from entrepot.limits.plans import PlanBook, PlanLimits
from entrepot.limits.windows import Calendar, Window, day_of, month_of
from entrepot.principal import Principal
from entrepot.problems import QuotaExceeded, RateLimited

log = structlog.get_logger("entrepot.limits")

LUA = files("entrepot.limits").joinpath("bucket.lua").read_text()
REDIS_TIMEOUT_SECONDS = 0.25
REDIS_RETRY_AFTER_SECONDS = 5.0
MAX_LOCAL_BUCKETS = 100_000

LIMITED = Counter("entrepot_requests_limited_total", "Requests refused with 429", ["reason"])
FALLBACKS = Counter(
    "entrepot_rate_limit_fallbacks_total", "Times Redis failed and local limits took over"
)
DECISIONS = Counter(
    "entrepot_rate_limit_decisions_total",
    "Rate-limit decisions by limit (plan, sign_in, auth_failures), outcome (allowed, "
    "refused) and reason (none; rate, day, month for plans; failures for the throttles)",
    ["limit", "outcome", "reason"],
)


@functools.cache
def decided(limit: str, refused_by: str | None) -> Counter:
    """The decision counter's child, cached: ``labels()`` takes a lock on every call,
    and plans decide on nearly every request. Bounded: three limits, five reasons."""
    if refused_by is None:
        return DECISIONS.labels(limit, "allowed", "none")
    return DECISIONS.labels(limit, "refused", refused_by)


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    refused_by: str | None  # None, "rate", "day" or "month"


class LocalQuotas:
    """Quota use per (app, window): what the usage table said plus what we admitted since."""

    def __init__(self) -> None:
        self._used: dict[tuple[uuid.UUID, str], list[int]] = {}  # [base, since]

    async def used(self, pool: asyncpg.Pool, app_id: uuid.UUID, window: Window) -> int:
        entry = self._used.get((app_id, window.name))
        if entry is None:
            base = (await repo.admitted_since(pool, [app_id], window.start)).get(app_id, 0)
            entry = self._used.setdefault((app_id, window.name), [base, 0])
        return entry[0] + entry[1]

    def count(self, app_id: uuid.UUID, windows: tuple[Window, Window]) -> None:
        for window in windows:
            entry = self._used.get((app_id, window.name))
            if entry is not None:
                entry[1] += 1

    async def refresh(self, pool: asyncpg.Pool, now: datetime) -> None:
        """Re-read the table (after our counts were flushed to it); forget past windows."""
        windows = (day_of(now), month_of(now))
        current = {window.name for window in windows}
        for key in [k for k in self._used if k[1] not in current]:
            del self._used[key]
        for window in windows:
            keys = [k for k in self._used if k[1] == window.name]
            if not keys:
                continue
            seen = {k: self._used[k][1] for k in keys}
            fresh = await repo.admitted_since(pool, [k[0] for k in keys], window.start)
            for key in keys:
                entry = self._used.get(key)
                if entry is not None:
                    entry[0] = fresh.get(key[0], 0)
                    entry[1] -= seen[key]


class RateLimiter:
    def __init__(self, pool: asyncpg.Pool, plans: PlanBook, redis: Any | None = None) -> None:
        self.pool = pool
        self.plans = plans
        self._script = redis.register_script(LUA) if redis is not None else None
        self._redis_down_until = 0.0
        self._buckets = LocalBuckets(MAX_LOCAL_BUCKETS)
        self.quotas = LocalQuotas()
        self.calendar = Calendar()

    async def admit(self, principal: Principal) -> Decision | None:
        """The decision to report in RateLimit-* headers; raises 429 when refused.

        Platform admins are not limited (None): they are the operators."""
        if principal.is_admin:
            return None
        plan = await self.plans.get(principal.plan)
        if plan is None:
            return None
        app_id = principal.app_id if principal.kind == "app" else None
        verdict = await self.check(principal.subject, plan, app_id)
        decided("plan", verdict.refused_by).inc()
        if verdict.refused_by is None:
            return verdict.decision
        LIMITED.labels(verdict.refused_by).inc()
        raise _refusal(verdict, plan)

    async def spend(self, key: str, limits: PlanLimits, cost: int) -> Decision:
        """A limit outside plans (failed sign-ins): spend ``cost`` tokens, or 0 to look."""
        return (await self.check(key, limits, None, cost)).decision

    async def check(
        self, subject: str, plan: PlanLimits, app_id: uuid.UUID | None, cost: int = 1
    ) -> Verdict:
        windows = self.calendar.current()
        quotas = (plan.daily_quota, plan.monthly_quota) if app_id is not None else (None, None)
        if self._script is not None and time.monotonic() >= self._redis_down_until:
            try:
                return await self._check_redis(subject, plan, windows, quotas, cost)
            except Exception as exc:  # Redis down or slow: degrade to local limits, not an outage
                self._redis_down_until = time.monotonic() + REDIS_RETRY_AFTER_SECONDS
                FALLBACKS.inc()
                log.warning("rate_limits_local", error=f"{type(exc).__name__}: {exc}")
        return await self._check_local(subject, plan, app_id, windows, quotas, cost)

    async def _check_redis(
        self,
        subject: str,
        plan: PlanLimits,
        windows: tuple[Window, Window],
        quotas: tuple[int | None, int | None],
        cost: int,
    ) -> Verdict:
        assert self._script is not None
        now = time.time()
        tag = "{" + subject + "}"  # one hash slot per caller, for Redis Cluster
        keys = [f"entrepot:rl:{tag}", f"entrepot:qd:{tag}:{windows[0].name}"]
        keys.append(f"entrepot:qm:{tag}:{windows[1].name}")
        args = [
            repr(plan.rate),
            plan.burst,
            -1 if quotas[0] is None else quotas[0],
            -1 if quotas[1] is None else quotas[1],
            windows[0].seconds_left(now) + 3600,
            windows[1].seconds_left(now) + 3600,
            "",
            cost,
        ]
        async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
            reply = await self._script(keys=keys, args=args)
        verdict = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        tokens = float(reply[1])
        decision = decide(verdict != "rate", tokens, plan.rate, plan.burst)
        if verdict == "ok":
            return Verdict(decision, None)
        return Verdict(_refused(decision, verdict, windows, now), verdict)

    async def _check_local(
        self,
        subject: str,
        plan: PlanLimits,
        app_id: uuid.UUID | None,
        windows: tuple[Window, Window],
        quotas: tuple[int | None, int | None],
        cost: int,
    ) -> Verdict:
        now = time.time()
        for window, quota, name in zip(windows, quotas, ("day", "month"), strict=True):
            if quota is None or app_id is None:
                continue
            if await self.quotas.used(self.pool, app_id, window) >= quota:
                decision = self._buckets.peek(subject, plan.rate, plan.burst)
                return Verdict(_refused(decision, name, windows, now), name)
        decision = self._buckets.take(subject, plan.rate, plan.burst, cost)
        if not decision.allowed:
            return Verdict(decision, "rate")
        if app_id is not None and cost:
            self.quotas.count(app_id, windows)
        return Verdict(decision, None)


def _refused(decision: Decision, why: str, windows: tuple[Window, Window], now: float) -> Decision:
    """A quota refusal keeps the bucket's figures but waits for the window to end."""
    if why == "rate":
        return decision
    window = windows[0] if why == "day" else windows[1]
    return Decision(
        False, decision.limit, decision.remaining, decision.reset, window.seconds_left(now)
    )


def _refusal(verdict: Verdict, plan: PlanLimits) -> RateLimited | QuotaExceeded:
    d = verdict.decision
    headers = rate_limit_headers(d) | {"Retry-After": str(d.retry_after)}
    if verdict.refused_by == "rate":
        return RateLimited(
            f"Plan {plan.name!r} allows {plan.rate:g} requests a second with bursts of "
            f"{plan.burst}; retry in {d.retry_after} s.",
            headers=headers,
        )
    day = verdict.refused_by == "day"
    period, quota = ("daily", plan.daily_quota) if day else ("monthly", plan.monthly_quota)
    return QuotaExceeded(
        f"The {period} quota of {quota} requests on plan {plan.name!r} is used up; it renews "
        f"in {d.retry_after} s, at the start of the next UTC {'day' if day else 'month'}.",
        headers=headers,
    )


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset),
    }
