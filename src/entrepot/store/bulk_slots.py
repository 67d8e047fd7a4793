"""Database connections for bulk work (imports, exports), apart from the request pool.

A bulk operation can last as long as its client makes it last: an export is
one REPEATABLE READ snapshot read as fast as the client takes it, an import
one transaction written as fast as the body arrives. On the request pool, a
few slow or stalled clients would hold every connection and starve every
other caller. So bulk work runs on a small pool of its own, and each caller
(an app, or a user) may hold only a few of its connections at once:

- over its own share, a caller is refused at once with 429 and Retry-After;
- with the bulk pool busy, a caller waits a moment, then gets 503 and Retry-After;
- the request pool is never touched by bulk work, so nothing else waits.

The counts are per process (per worker replica), like the pools themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from entrepot.ops.metrics import BULK_REFUSED
from entrepot.problems import BulkLimited, ServiceUnavailable
from entrepot.store.types import Conn

RETRY_AFTER_SECONDS = 5


@dataclass
class BulkTicket:
    """A caller's admitted bulk operation; its connection is taken only when needed."""

    slots: BulkSlots

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        try:
            conn = await self.slots.pool.acquire(timeout=self.slots.queue_seconds)
        except TimeoutError:
            BULK_REFUSED.labels("busy").inc()
            raise ServiceUnavailable(
                "Every connection for imports and exports is in use; retry shortly.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None
        try:
            yield conn
        finally:
            await self.slots.pool.release(conn)


class BulkSlots:
    def __init__(self, pool: asyncpg.Pool, *, per_caller: int, queue_seconds: float) -> None:
        self.pool = pool
        self.per_caller = per_caller
        self.queue_seconds = queue_seconds
        self._running: dict[str, int] = {}

    def running(self, caller: str) -> int:
        return self._running.get(caller, 0)

    @asynccontextmanager
    async def admit(self, caller: str | None) -> AsyncIterator[BulkTicket]:
        """Count one bulk operation against ``caller``'s share (429 beyond it); a caller
        of None (a platform administrator, limited nowhere else either) has no share."""
        if caller is None:
            yield BulkTicket(self)
            return
        if self.running(caller) >= self.per_caller:
            BULK_REFUSED.labels("caller").inc()
            raise BulkLimited(
                f"At most {self.per_caller} imports and exports may run at once for one "
                "caller; wait for one to finish.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._running[caller] = self.running(caller) + 1
        try:
            yield BulkTicket(self)
        finally:
            left = self._running[caller] - 1
            if left:
                self._running[caller] = left
            else:
                del self._running[caller]

    @asynccontextmanager
    async def connection(self, caller: str | None) -> AsyncIterator[Conn]:
        """Admit ``caller`` and take a bulk connection at once (an export)."""
        async with self.admit(caller) as ticket, ticket.connection() as conn:
            yield conn
