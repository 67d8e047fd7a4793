"""One audit row per key and minute for throttled requests.

A throttle refuses requests precisely because someone sends too many; writing
an audit row for each refusal would let them write at will. So a refusal is
counted in metrics, and the audit log gets one row per key (an address, an
account) and interval saying the throttle engaged.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import structlog

from entrepot.auditing.log import record
from entrepot.store_failures import STORE_FAILURES

log = structlog.get_logger("entrepot.limits")

MAX_KEYS = 100_000


class AuditOnce:
    def __init__(self, pool: asyncpg.Pool, interval: float = 60.0) -> None:
        self.pool = pool
        self.interval = interval
        self._last: dict[str, float] = {}

    async def record(
        self, key: str, action: str, target: str | None, details: dict[str, Any]
    ) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -self.interval) < self.interval:
            return
        if len(self._last) > MAX_KEYS:
            self._last.clear()
        self._last[key] = now
        try:
            await record(
                self.pool, None, action, target, outcome="denied", status=429, details=details
            )
        except STORE_FAILURES as exc:
            log.warning(
                "throttle_audit_failed", action=action, error=f"{type(exc).__name__}: {exc}"
            )
