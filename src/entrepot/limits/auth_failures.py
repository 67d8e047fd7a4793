"""Failed authentication per client address: a flood of bad bearers is cut off early.

Every refused credential costs a store lookup and an audit row, so an
unauthenticated client could otherwise make us write without bound. Each
address has an allowance of failures (``burst``, refilling at ``rate`` a
second); past it, requests that would need a lookup get a 429 at once, with
no lookup and no per-request audit row; one ``auth.throttled`` row per
address and minute records that the throttle engaged. Valid credentials
already cached never touch this. The buckets are per replica: the point is
to bound each replica's work, not to meter anyone.
"""

from __future__ import annotations

import asyncpg

from entrepot.limits.audit_once import AuditOnce
from entrepot.limits.bucket import LocalBuckets
from entrepot.limits.limiter import LIMITED, decided, rate_limit_headers
from entrepot.problems import RateLimited

MAX_ADDRESSES = 100_000


class AuthFailureThrottle:
    def __init__(self, pool: asyncpg.Pool, rate: float, burst: int) -> None:
        self.pool = pool
        self.rate = rate
        self.burst = burst
        self._buckets = LocalBuckets(MAX_ADDRESSES)
        self._audit = AuditOnce(pool)

    async def check(self, ip: str | None) -> None:
        """Refuse (429) an address that has used up its failures, before any lookup."""
        if ip is None:
            return
        decision = self._buckets.peek(ip, self.rate, self.burst)
        if decision.allowed:
            decided("auth_failures", None).inc()
            return
        decided("auth_failures", "failures").inc()
        LIMITED.labels("auth_failures").inc()
        await self._audit.record(
            ip, "auth.throttled", f"ip:{ip}", {"burst": self.burst, "per_second": self.rate}
        )
        raise RateLimited(
            f"Too many failed authentications from {ip}; retry in {decision.retry_after} s.",
            headers=rate_limit_headers(decision) | {"Retry-After": str(decision.retry_after)},
        )

    def failed(self, ip: str | None) -> None:
        if ip is None:
            return
        self._buckets.take(ip, self.rate, self.burst)
