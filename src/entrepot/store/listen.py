"""One reconnecting LISTEN loop, shared by every cross-replica signal.

PostgreSQL notifications ride a dedicated connection (never a pooled one:
LISTEN is session state). When that connection drops, notifications sent in
the meantime are lost, so ``on_connect`` runs after every (re)connection and
``on_disconnect`` after every loss: callers use them to wake or flush
whatever may have missed a message. The loop beats its ``heartbeat`` on every
(re)connection attempt and every few seconds while it listens.

Each loop is one of the worker's dedicated connections (store/budget.py counts
them), named ``entrepot-listen-<name>`` in ``pg_stat_activity``; its URL must
reach the server itself, never a transaction pooler (``Settings.direct_url``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog

from entrepot.aio import wait_event
from entrepot.liveness import Heartbeat
from entrepot.store_failures import STORE_FAILURES

log = structlog.get_logger("entrepot.listen")

Handler = Callable[[str], None]

BEAT_SECONDS = 5.0
MAX_DELAY_SECONDS = 10.0
# The longest a healthy listener goes without a beat: asyncpg's default connect
# timeout (60 s), then the longest backoff, then one beat interval.
EVERY_SECONDS = 60.0 + MAX_DELAY_SECONDS + BEAT_SECONDS


async def listen_forever(
    dsn: str,
    channel: str,
    on_message: Handler,
    *,
    on_connect: Callable[[], None] = lambda: None,
    on_disconnect: Callable[[], None] = lambda: None,
    name: str = "listener",
    heartbeat: Heartbeat | None = None,
) -> None:
    """Deliver ``channel`` payloads to ``on_message`` until cancelled, reconnecting with backoff."""

    def deliver(conn: object, pid: int, chan: str, payload: object) -> None:
        on_message(str(payload))

    def beat() -> None:
        if heartbeat is not None:
            heartbeat.beat()

    delay = 0.5
    while True:
        beat()
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(
                dsn, server_settings={"application_name": f"entrepot-listen-{name}"}
            )
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _conn, done=closed: done.set())
            await conn.add_listener(channel, deliver)
            on_connect()
            delay = 0.5
            while not await wait_event(closed, BEAT_SECONDS):
                beat()
        except asyncio.CancelledError:
            raise
        except STORE_FAILURES as exc:
            log.warning("listener_down", listener=name, error=str(exc))
        finally:
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close()
        on_disconnect()
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_SECONDS)
