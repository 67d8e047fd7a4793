"""After a commit: wake the dataset's feed readers everywhere, and keep the feed numbered.

Writers call :meth:`FeedWaker.changed` once their change has committed. This
replica's waiting readers wake at once; the other replicas hear of it by a
NOTIFY sent after the commit, several datasets and several writes to one
message when they come together, so no write transaction ever takes
PostgreSQL's global notify lock. Readers number pending changes themselves
before they read (:func:`entrepot.changes.repository.sequence`); the sweep
numbers the changes this replica wrote, every second, so the pending part of
the log stays small for datasets nobody is reading. (Changes another replica
wrote are its sweep's; those of a replica that died before its sweep are
numbered by the next reader, or by compaction's pass over every dataset.)
The waker also drops the logs of deleted datasets (:mod:`entrepot.changes.retire`).
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from entrepot.aio import start_loop, stop_tasks, wait_event
from entrepot.changes import repository as repo
from entrepot.changes.retire import retire_logs
from entrepot.changes.waiter import ChangeWaiter
from entrepot.liveness import Heartbeat, Liveness
from entrepot.store_failures import STORE_FAILURES

log = structlog.get_logger("entrepot.changes")

SWEEP_SECONDS = 1.0
ANNOUNCE_IDLE_SECONDS = 5.0  # an idle announcer still comes round (and beats) this often
RETIRE_SECONDS = 1.0
# A detach may wait up to the statement timeout (30 s by default) before it gives up.
RETIRE_BEAT_SECONDS = 30.0


class FeedWaker:
    def __init__(
        self, pool: asyncpg.Pool, waiter: ChangeWaiter, liveness: Liveness | None = None
    ) -> None:
        self.pool = pool
        self.waiter = waiter
        self.liveness = liveness or Liveness()
        self._dirty: set[int] = set()  # to announce
        self._unswept: set[int] = set()  # to number
        self._pending = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._heartbeats: list[Heartbeat] = []

    def start(self) -> None:
        announce = self.liveness.register("feed-announce", ANNOUNCE_IDLE_SECONDS)
        sweep = self.liveness.register("feed-sweep", SWEEP_SECONDS)
        retire = self.liveness.register("feed-retire", RETIRE_BEAT_SECONDS)
        self._heartbeats = [announce, sweep, retire]
        self._tasks = [
            start_loop(self._announce(announce), "feed-announce"),
            start_loop(self._sweep(sweep), "feed-sweep"),
            start_loop(self._retire(retire), "feed-retire"),
        ]

    async def stop(self) -> None:
        self.liveness.unregister(*self._heartbeats)
        await stop_tasks(self._tasks)

    def changed(self, dataset_id: int) -> None:
        """A change to ``dataset_id`` has committed."""
        self.waiter.wake(dataset_id)
        self._dirty.add(dataset_id)
        self._unswept.add(dataset_id)
        self._pending.set()

    async def _announce(self, heartbeat: Heartbeat) -> None:
        while True:
            heartbeat.beat()
            if not await wait_event(self._pending, ANNOUNCE_IDLE_SECONDS):
                continue
            self._pending.clear()
            dirty, self._dirty = sorted(self._dirty), set()
            try:
                await self.pool.execute(
                    "SELECT pg_notify($1, id::text) FROM unnest($2::bigint[]) AS id",
                    repo.CHANNEL,
                    dirty,
                )
            except STORE_FAILURES as exc:
                # The other replicas' readers still find the change on their next
                # read or heartbeat; nothing is lost, only later.
                log.warning("feed_announce_failed", error=type(exc).__name__)

    async def _sweep(self, heartbeat: Heartbeat) -> None:
        while True:
            heartbeat.beat()
            await asyncio.sleep(SWEEP_SECONDS)
            swept, self._unswept = sorted(self._unswept), set()
            try:
                while swept:
                    await repo.sequence(self.pool, swept[0])
                    swept.pop(0)
                    heartbeat.beat()
            except STORE_FAILURES as exc:
                self._unswept.update(swept)  # next time
                log.warning("feed_sweep_failed", error=type(exc).__name__)

    async def _retire(self, heartbeat: Heartbeat) -> None:
        while True:
            heartbeat.beat()
            await asyncio.sleep(RETIRE_SECONDS)
            try:
                await retire_logs(self.pool, progress=heartbeat.beat)
            except STORE_FAILURES as exc:
                log.warning("change_log_retire_failed", error=type(exc).__name__)
