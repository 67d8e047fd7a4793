"""Exactly one publishing replica: a lease in PostgreSQL, and why it is enough.

Every replica runs the publisher loop; each iteration it takes or renews the
lease row (``lease_repository.take``/``renew``). The holder renews a third of
the lease's length after its last renewal; a replica that dies stops renewing
and another takes the row over once it has expired (by PostgreSQL's clock),
bumping its ``term``.

Fencing. A lease alone cannot stop a holder that paused (a long GC, a frozen
VM, a network partition from PostgreSQL) from waking up after it expired and
publishing once more. Two things make that harmless:

1. Locally, the holder counts its lease from *before* it sent the statement
   that took or renewed it (``valid_until``), by its monotonic clock, less a
   margin, and publishes nothing once that has passed without a renewal: it
   always believes its lease ends earlier than PostgreSQL does.
2. At the broker, which is the real fence: every message is published with
   ``Nats-Expected-Last-Subject-Sequence`` set to the JetStream sequence of the
   last message the publisher knows is on the subject (publisher.py). A stale
   holder's publish after the new holder has published anything fails with
   "wrong last sequence" and it stops; if the new holder has published nothing
   yet, the stale holder's message is the very next change of the feed, which
   the new holder then finds as the subject's last message (or is told is a
   duplicate by its ``Nats-Msg-Id``). Either way the subject holds each change
   once, in feed order, whoever publishes.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import structlog

from entrepot.store.types import Executor
from entrepot.streams import lease_repository as repo

log = structlog.get_logger("entrepot.streams")

NAME = "jetstream"
MARGIN = 0.2  # of the lease's length: how much sooner than PostgreSQL we consider it lost


def holder_name() -> str:
    """This process's name in the lease row: host and pid (for operators), and a random
    part (a restarted process with a reused pid is another holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """This replica's view of the publisher lease."""

    def __init__(self, seconds: float, holder: str | None = None, name: str = NAME) -> None:
        self.seconds = seconds
        self.holder = holder or holder_name()
        self.name = name
        self.term: int | None = None
        self.valid_until = 0.0  # monotonic
        self._renewed_at = 0.0

    @property
    def held(self) -> bool:
        """Whether we may publish now (our lease is running, with the margin to spare)."""
        return self.term is not None and time.monotonic() < self.valid_until

    def due(self) -> bool:
        """Whether it is time to renew (or to try to take it)."""
        return not self.held or time.monotonic() - self._renewed_at >= self.seconds / 3

    async def refresh(self, conn: Executor) -> bool:
        """Take or renew the lease as needed; whether we hold it afterwards."""
        if not self.due():
            return True
        asked = time.monotonic()
        was = self.term
        if was is not None and self.held:
            renewed = await repo.renew(conn, self.name, self.holder, was, self.seconds)
            term = was if renewed else None
        else:
            term = await repo.take(conn, self.name, self.holder, self.seconds)
        self.term = term
        if term is None:
            self.valid_until = 0.0
            if was is not None:
                log.warning("publisher_lease_lost", holder=self.holder, term=was)
            return False
        self.valid_until = asked + self.seconds * (1 - MARGIN)
        self._renewed_at = asked
        if term != was:
            log.info("publisher_lease_taken", holder=self.holder, term=term)
        return True

    def lose(self) -> None:
        """Forget the lease (a store failure: we cannot tell whether it still runs)."""
        self.term = None
        self.valid_until = 0.0

    async def release(self, conn: Executor) -> None:
        if self.term is not None:
            await repo.release(conn, self.name, self.holder, self.term)
        self.lose()
