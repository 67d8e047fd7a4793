"""Turn committed changes into deliveries, in every replica.

The dispatcher sleeps until the change waiter reports a commit on a dataset
some active webhook follows (LISTEN/NOTIFY, so any replica's write wakes it)
or a short timer passes (which also picks up new webhooks), then brings every
lagging (webhook, dataset) cursor up to the feed's head, one feed read for all
of an app's webhooks on a dataset (:func:`fan_out`). Replicas share the
work through row locks on the cursors: see :meth:`Enqueuer.dispatch`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import structlog

from entrepot.aio import start_loop, stop_tasks
from entrepot.changes import repository as changes_repo
from entrepot.changes.waiter import ChangeWaiter
from entrepot.liveness import Heartbeat, Liveness
from entrepot.webhooks import dispatch_repository as dispatch_repo
from entrepot.webhooks.dispatch_repository import PairBehind
from entrepot.webhooks.enqueue import Enqueuer

log = structlog.get_logger("entrepot.webhooks")

INTERVAL_SECONDS = 1.0
MAX_WATCHED = 500  # beyond this many datasets, rely on the timer alone
ROUNDS_PER_PAIR = 20  # pages per group before moving on, so one busy dataset cannot starve others


def fan_out(pairs: list[PairBehind]) -> list[list[PairBehind]]:
    """Pairs that one read of the feed serves: one app's webhooks on one dataset at one
    cursor (the app's view renders the page once for them all). A webhook behind the
    others (re-enabled, say) catches up on its own, never holding them back."""
    groups: dict[tuple[int, uuid.UUID, int], list[PairBehind]] = {}
    for pair in pairs:
        groups.setdefault((pair.dataset_id, pair.app_id, pair.cursor_seq), []).append(pair)
    return list(groups.values())


class Dispatcher:
    def __init__(
        self,
        enqueuer: Enqueuer,
        waiter: ChangeWaiter,
        interval: float = INTERVAL_SECONDS,
        *,
        liveness: Liveness | None = None,
    ) -> None:
        self.enqueuer = enqueuer
        self.waiter = waiter
        self.interval = interval
        self.liveness = liveness or Liveness()
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: Heartbeat | None = None
        self._kick = asyncio.Event()

    def start(self) -> None:
        self._heartbeat = self.liveness.register("webhook-dispatcher", self.interval)
        self._task = start_loop(self._run(self._heartbeat), "webhook-dispatcher")

    async def stop(self) -> None:
        self.liveness.unregister(self._heartbeat)
        await stop_tasks([self._task])

    def kick(self) -> None:
        """Look again now (a webhook was created, re-enabled or given new datasets)."""
        self._kick.set()

    async def dispatch_all(self, beat: Callable[[], None] = lambda: None) -> None:
        # Number what has committed first: a head that has not moved hides new changes.
        # Only the followed datasets matter here.
        pool = self.enqueuer.pool
        followed = await dispatch_repo.followed_datasets(pool)
        for dataset_id in await changes_repo.pending_datasets(pool, followed):
            await changes_repo.sequence(pool, dataset_id)
            beat()
        for group in fan_out(await dispatch_repo.pairs_behind(pool)):
            for _ in range(ROUNDS_PER_PAIR):
                more = await self.enqueuer.dispatch(group)
                beat()
                if not more:
                    break

    async def _run(self, heartbeat: Heartbeat) -> None:
        while True:
            heartbeat.beat()
            try:
                self._kick.clear()
                datasets = await dispatch_repo.followed_datasets(self.enqueuer.pool)
                if len(datasets) > MAX_WATCHED:
                    datasets = []
                # Subscribe before reading, so a commit landing meanwhile still wakes us.
                events = [(d, self.waiter.subscribe(d)) for d in datasets]
                try:
                    await self.dispatch_all(heartbeat.beat)
                    await self._sleep([e for _, e in events])
                finally:
                    for dataset_id, event in events:
                        self.waiter.unsubscribe(dataset_id, event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep dispatching through store hiccups
                log.warning("webhook_dispatch_failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(self.interval)

    async def _sleep(self, events: list[asyncio.Event]) -> None:
        waits = [asyncio.ensure_future(e.wait()) for e in [self._kick, *events]]
        try:
            await asyncio.wait(waits, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
