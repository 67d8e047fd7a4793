"""Usage metering: count each app's requests in memory, add them to PostgreSQL in batches.

A count is per app, hour, endpoint class, status and dataset (the ``ds`` of the
route's path, '' when it has none). The dataset is what the caller typed, so the
flush keeps it only when such a dataset exists (``repository.add_usage``): the table
is bounded by the catalogue, and a mistyped name counts as the '' dataset.

Counting is a dict increment on the request path; a background task adds the
counts to ``usage_hourly`` every few seconds in one statement, then lets the
limiter re-read quota use. Counts that fail to flush are kept for the next try.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import structlog

from entrepot.aio import start_loop, stop_tasks
from entrepot.limits import repository as repo
from entrepot.limits.classes import endpoint_class
from entrepot.liveness import Heartbeat, Liveness
from entrepot.store_failures import STORE_FAILURES

log = structlog.get_logger("entrepot.limits")

UsageKey = tuple[uuid.UUID, datetime, str, int, str]
MAX_DATASET_NAME = 63  # a slug (fields.SLUG); anything longer cannot name a dataset
MAX_PENDING_KEYS = 200_000  # beyond this while the store is down, new counts are dropped


class UsageMeter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        interval: float,
        after_flush: Callable[[datetime], Awaitable[None]] | None = None,
        *,
        liveness: Liveness | None = None,
    ) -> None:
        self.pool = pool
        self.interval = interval
        self.after_flush = after_flush
        self.liveness = liveness or Liveness()
        self._pending: Counter[UsageKey] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: Heartbeat | None = None

    def count(
        self, app_id: uuid.UUID, method: str, route: str, status: int, dataset: str | None = None
    ) -> None:
        now = datetime.now(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        ds = dataset if dataset is not None and len(dataset) <= MAX_DATASET_NAME else ""
        key = (app_id, hour, endpoint_class(method, route), status, ds)
        if key in self._pending or len(self._pending) < MAX_PENDING_KEYS:
            self._pending[key] += 1

    def start(self) -> None:
        self._heartbeat = self.liveness.register("usage-meter", self.interval)
        self._task = start_loop(self._run(self._heartbeat), "usage-meter")

    async def stop(self) -> None:
        self.liveness.unregister(self._heartbeat)
        await stop_tasks([self._task])
        await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, Counter()
        if not batch:
            return
        rows = [(*key, n) for key, n in sorted(batch.items())]
        try:
            await repo.add_usage(self.pool, rows)
        except STORE_FAILURES as exc:
            self._pending.update(batch)  # try again next round
            log.warning("usage_flush_failed", error=f"{type(exc).__name__}: {exc}")

    async def _run(self, heartbeat: Heartbeat) -> None:
        while True:
            heartbeat.beat()
            await asyncio.sleep(self.interval)
            await self.flush()
            if self.after_flush is not None:
                try:
                    await self.after_flush(datetime.now(UTC))
                except STORE_FAILURES as exc:
                    log.warning("quota_refresh_failed", error=f"{type(exc).__name__}: {exc}")
