"""Wake long polls and event streams when a change commits, on any replica.

Writers tell their own replica's waiters at once, and the others through
``pg_notify('entrepot_changes', <dataset id>)`` sent after their commit
(:mod:`entrepot.changes.waker`); every replica LISTENs on one dedicated
connection and wakes the requests waiting on that dataset. No polling loops: a waiter sleeps until a
notification or its timeout. After a reconnect every waiter is woken, since
notifications may have been missed meanwhile; they re-read the feed anyway.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from entrepot.aio import start_loop, stop_tasks
from entrepot.changes.repository import CHANNEL
from entrepot.liveness import Heartbeat, Liveness
from entrepot.store.listen import EVERY_SECONDS, listen_forever


class ChangeWaiter:
    def __init__(self, dsn: str, liveness: Liveness | None = None) -> None:
        self.dsn = dsn
        self.liveness = liveness or Liveness()
        self._events: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: Heartbeat | None = None

    def start(self) -> None:
        self._heartbeat = self.liveness.register("change-waiter", EVERY_SECONDS)
        self._task = start_loop(self._run(self._heartbeat), "change-waiter")

    async def stop(self) -> None:
        self.liveness.unregister(self._heartbeat)
        await stop_tasks([self._task])
        self.wake_all()

    def subscribe(self, dataset_id: int) -> asyncio.Event:
        """Register interest *before* reading the feed, so no commit slips between."""
        event = asyncio.Event()
        self._events[dataset_id].add(event)
        return event

    def unsubscribe(self, dataset_id: int, event: asyncio.Event) -> None:
        waiters = self._events.get(dataset_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._events[dataset_id]

    def waiting(self, dataset_id: int) -> int:
        """How many requests are waiting for this dataset's next change here."""
        return len(self._events.get(dataset_id, ()))

    def wake(self, dataset_id: int) -> None:
        for event in self._events.get(dataset_id, ()):
            event.set()

    def wake_all(self) -> None:
        for waiters in self._events.values():
            for event in waiters:
                event.set()

    def _on_message(self, payload: str) -> None:
        try:
            self.wake(int(payload))
        except ValueError:
            self.wake_all()

    async def _run(self, heartbeat: Heartbeat) -> None:
        await listen_forever(
            self.dsn,
            CHANNEL,
            self._on_message,
            on_connect=self.wake_all,
            on_disconnect=self.wake_all,
            name="changes",
            heartbeat=heartbeat,
        )
