"""Attempts' outcomes written in batches: one statement for everything that ended meanwhile.

Like a group commit: an outcome arriving while the store is idle is written at
once (a lone delivery waits no longer than before); those arriving while a
write is under way go together in the next one. At a thousand deliveries a
second that is tens of outcomes per statement instead of one round trip and
one NOTIFY each. Each caller learns whether its lease still held. A batch's
statement runs in the context of its first outcome's caller, so with tracing
on, a delivery recorded alone (the usual case below full load) has the SQL
that saved its outcome in its own trace; in a larger batch only the first has.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable

import asyncpg
import structlog

from entrepot.liveness import Heartbeat
from entrepot.webhooks import queue_repository as queue_repo
from entrepot.webhooks.queue_repository import Outcome

log = structlog.get_logger("entrepot.webhooks")

IDLE_SECONDS = 1.0
MAX_BATCH = 1000


class Recorder:
    def __init__(self, pool: asyncpg.Pool, on_written: Callable[[], None]) -> None:
        self.pool = pool
        self.on_written = on_written
        self._pending: list[tuple[Outcome, asyncio.Future[bool], contextvars.Context]] = []
        self._kick = asyncio.Event()

    async def record(self, outcome: Outcome) -> bool:
        """Write ``outcome`` with the next batch; whether this worker still held the lease.
        Raises what the store raised (the lease then expires and the delivery goes again)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)  # a caller cut short must not leave it unread
        self._pending.append((outcome, done, contextvars.copy_context()))
        self._kick.set()
        return await asyncio.shield(done)

    async def run(self, heartbeat: Heartbeat) -> None:
        while True:
            heartbeat.beat()
            if not self._pending:
                self._kick.clear()
                try:
                    async with asyncio.timeout(IDLE_SECONDS):
                        await self._kick.wait()
                except TimeoutError:
                    continue
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending now (also at shutdown, after the loop stopped)."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            outcomes = [o for o, _, _ in batch]
            try:
                written = await asyncio.create_task(
                    queue_repo.finish_many(self.pool, outcomes), context=batch[0][2]
                )
            except asyncio.CancelledError:
                self._pending = batch + self._pending  # written by the final flush
                raise
            except Exception as exc:
                for _, done, _ in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for outcome, done, _ in batch:
                if not done.done():
                    done.set_result(outcome.delivery_id in written)
            self.on_written()


def _retrieved(done: asyncio.Future[bool]) -> None:
    if not done.cancelled():
        done.exception()
