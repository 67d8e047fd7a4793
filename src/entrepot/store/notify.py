"""Cross-replica cache invalidation over PostgreSQL LISTEN/NOTIFY.

A change that must take effect everywhere at once (a revoked key, a disabled
app, a revoked grant, a dataset's visibility) sends ``pg_notify`` on
``entrepot_invalidate`` inside its own transaction, so the message goes out
exactly when the change commits. Every replica listens on a dedicated
connection and drops the affected caches. If the listener loses its
connection it reconnects and, since messages may have been missed meanwhile,
drops every cache: the short cache TTLs remain the backstop either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from entrepot.aio import start_loop, stop_tasks
from entrepot.liveness import Heartbeat, Liveness
from entrepot.store.listen import EVERY_SECONDS, listen_forever
from entrepot.store.types import Conn

CHANNEL = "entrepot_invalidate"

Handler = Callable[[str], None]


async def announce(conn: Conn, topic: str) -> None:
    """Queue an invalidation; PostgreSQL delivers it when the transaction commits."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, topic)


class InvalidationListener:
    def __init__(self, dsn: str, handler: Handler, liveness: Liveness | None = None) -> None:
        self.dsn = dsn
        self.handler = handler
        self.liveness = liveness or Liveness()
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: Heartbeat | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._heartbeat = self.liveness.register("invalidation-listener", EVERY_SECONDS)
        self._task = start_loop(self._run(self._heartbeat), "invalidation-listener")

    async def stop(self) -> None:
        self.liveness.unregister(self._heartbeat)
        await stop_tasks([self._task])

    async def _run(self, heartbeat: Heartbeat) -> None:
        def connected() -> None:
            self.handler("*")  # anything may have changed while we were not listening
            self.connected.set()

        await listen_forever(
            self.dsn,
            CHANNEL,
            self.handler,
            on_connect=connected,
            on_disconnect=self.connected.clear,
            name="invalidation",
            heartbeat=heartbeat,
        )
