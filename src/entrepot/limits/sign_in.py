"""Failed sign-ins per account: a few are free, then one try every few seconds.

Only failures spend tokens, so a user who types the password right is never
slowed; a guesser gets ``burst`` tries, then one per refill interval, and once
refused costs us no Argon2 verification. The bucket is keyed by a digest of
the normalised email (no address lands in Redis), whether or not the account
exists, so refusals say nothing about which emails are registered.
"""

from __future__ import annotations

import hashlib

from entrepot.limits.audit_once import AuditOnce
from entrepot.limits.limiter import LIMITED, RateLimiter, decided, rate_limit_headers
from entrepot.limits.plans import PlanLimits
from entrepot.problems import RateLimited
from entrepot.settings import Settings


class SignInThrottle:
    def __init__(self, limiter: RateLimiter, settings: Settings) -> None:
        self.limiter = limiter
        self.limits = PlanLimits(
            "sign-in",
            settings.sign_in_failures_per_minute / 60.0,
            settings.sign_in_failures_burst,
            None,
            None,
        )
        self._audit = AuditOnce(limiter.pool)

    @staticmethod
    def _key(email: str) -> str:
        return "signin:" + hashlib.sha256(email.encode()).hexdigest()[:32]

    async def check(self, email: str) -> None:
        """Refuse (429) an account that has run out of failed attempts, before any hashing.

        Refusals are not audited one by one (a guesser would write at will); one
        ``auth.sign_in_throttled`` row per account and minute says it happened."""
        decision = await self.limiter.spend(self._key(email), self.limits, cost=0)
        if decision.allowed:
            decided("sign_in", None).inc()
            return
        decided("sign_in", "failures").inc()
        LIMITED.labels("sign_in").inc()
        await self._audit.record(email, "auth.sign_in_throttled", None, {"email": email})
        raise RateLimited(
            f"Too many failed sign-ins for this account; retry in {decision.retry_after} s.",
            headers=rate_limit_headers(decision) | {"Retry-After": str(decision.retry_after)},
        )

    async def failed(self, email: str) -> None:
        await self.limiter.spend(self._key(email), self.limits, cost=1)


class NoThrottle:
    """For services built without a limiter (tests of the service alone)."""

    async def check(self, email: str) -> None:
        return None

    async def failed(self, email: str) -> None:
        return None
