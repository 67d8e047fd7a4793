"""Background loops ride out a store connection that died under them.

A connection PostgreSQL ends in the middle of an operation (a restart, a
failover, ``pg_terminate_backend``) can leave asyncpg reporting
``InternalClientError`` ("cannot switch to state 15; another operation (2) is
in progress") rather than a connection error. tests/chaos/test_rolling.py met
it: the change feed's sweep and announce loops died of it, silently, and a
minute later every /healthz of that replica failed (docs/ha.md).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog

from entrepot.changes.waiter import ChangeWaiter
from entrepot.changes.waker import FeedWaker
from entrepot.liveness import Liveness
from entrepot.settings import Settings
from entrepot.store.pool import create_pool
from entrepot.store_failures import STORE_FAILURES
from tests.waiting import until

SRC = Path(__file__).parents[2] / "src" / "entrepot"
NO_SUCH_DATASET = 2**31 - 1  # its sweep finds no log to number: a no-op that reaches the store


class DyingPool:
    """Makes a real pool's next ``failures`` calls of ``execute`` fail as a connection
    that died mid-operation does; counts every call."""

    def __init__(self, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
        self.failures = 0
        self.calls = 0
        real = pool.execute

        async def execute(*args: Any, **kwargs: Any) -> str:
            self.calls += 1
            if self.failures:
                self.failures -= 1
                raise asyncpg.InternalClientError(
                    "cannot switch to state 15; another operation (2) is in progress"
                )
            status: str = await real(*args, **kwargs)
            return status

        monkeypatch.setattr(pool, "execute", execute)


@pytest.fixture
async def pool(settings: Settings, database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings, database_url)
    try:
        yield pool
    finally:
        await pool.close()


def test_a_connection_that_died_mid_operation_is_a_store_failure() -> None:
    assert issubclass(asyncpg.InternalClientError, STORE_FAILURES)
    assert issubclass(asyncpg.ConnectionDoesNotExistError, STORE_FAILURES)
    assert issubclass(asyncpg.AdminShutdownError, STORE_FAILURES)
    assert issubclass(ConnectionResetError, STORE_FAILURES)


def test_no_module_names_a_list_of_its_own() -> None:
    """A list of its own forgets one: that is how the feed's loops came to die of it."""
    own = re.compile(r"(except\s*|suppress)\(\s*OSError,\s*asyncpg\.")
    assert [p.name for p in SRC.rglob("*.py") if own.search(p.read_text())] == []


async def test_the_feed_loops_carry_on_after_a_connection_died_under_them(
    pool: asyncpg.Pool, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dying = DyingPool(pool, monkeypatch)
    liveness = Liveness()
    waker = FeedWaker(pool, ChangeWaiter(database_url, liveness), liveness)
    with structlog.testing.capture_logs() as logs:
        waker.start()
        try:
            dying.failures = 2
            waker.changed(NO_SUCH_DATASET)  # announced at once, swept within a second
            await until(lambda: _zero(dying.failures), "both loops met the dead connection")
            calls = dying.calls
            waker.changed(NO_SUCH_DATASET)
            await until(lambda: _at_least(dying.calls, calls + 2), "both loops went on", within=10)
            assert liveness.stalled() == []
        finally:
            await waker.stop()
    said = {(e["log_level"], e["event"]) for e in logs if e["log_level"] != "debug"}
    assert said == {("warning", "feed_announce_failed"), ("warning", "feed_sweep_failed")}


async def _zero(n: int) -> bool:
    return n == 0


async def _at_least(n: int, least: int) -> bool:
    return n >= least
