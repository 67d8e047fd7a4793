"""A lazily begun unit of work: autocommit until the use case asks for a transaction.

Record writes are one statement on their common path, so their unit begins no
transaction (two round trips fewer); anything that must span statements asks
first. Either way effects are released only after what was written is durable.
"""

from __future__ import annotations

import asyncpg
import pytest
from fastapi import FastAPI

from entrepot.store.work import lazy_unit_of_work, reads, unit_of_work


@pytest.fixture
async def pool(database_url: str) -> asyncpg.Pool:
    created = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    async with created.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS lazy_unit (v int)")
        await conn.execute("TRUNCATE lazy_unit")
    yield created
    await created.close()


async def values(pool: asyncpg.Pool) -> list[int]:
    return [r[0] for r in await pool.fetch("SELECT v FROM lazy_unit ORDER BY v")]


async def test_a_lazy_unit_runs_in_autocommit_until_asked(pool: asyncpg.Pool) -> None:
    released: list[str] = []
    async with lazy_unit_of_work(pool) as work:
        assert not work.in_transaction
        assert not work.conn.is_in_transaction()
        await work.conn.execute("INSERT INTO lazy_unit VALUES (1)")
        assert await values(pool) == [1]  # durable at once: one statement, no BEGIN
        work.after_commit(lambda: released.append("done"))
    assert released == ["done"]


async def test_once_begun_a_lazy_unit_commits_or_rolls_back_as_one(pool: asyncpg.Pool) -> None:
    async def failing_use_case() -> None:
        async with lazy_unit_of_work(pool) as work:
            await work.begin_transaction()
            await work.begin_transaction()  # asking twice is asking once
            assert work.conn.is_in_transaction()
            await work.conn.execute("INSERT INTO lazy_unit VALUES (2)")
            work.after_commit(lambda: pytest.fail("released after a rollback"))
            raise RuntimeError("the use case failed")

    with pytest.raises(RuntimeError, match="the use case failed"):
        await failing_use_case()
    assert await values(pool) == []
    async with lazy_unit_of_work(pool) as work:
        await work.begin_transaction()
        await work.conn.execute("INSERT INTO lazy_unit VALUES (3)")
        assert await values(pool) == []  # not visible before the commit
    assert await values(pool) == [3]


async def test_an_eager_unit_is_in_its_transaction_from_the_start(pool: asyncpg.Pool) -> None:
    async with unit_of_work(pool) as work:
        assert work.in_transaction
        assert work.conn.is_in_transaction()


async def test_a_connection_left_in_a_transaction_is_rolled_back_before_the_pool_has_it(
    app: FastAPI, database_url: str
) -> None:
    """The pool skips asyncpg's session reset on release (``store/pool.py``), which we
    rely on asyncpg not to extend to an open transaction: one left open by a bug is
    rolled back, never handed to the next request."""
    pool = app.state.components.get(asyncpg.Pool)
    async with reads(pool) as unit:
        await unit.conn.execute("BEGIN; CREATE TEMP TABLE left_open (x int)")
        assert unit.conn.is_in_transaction()
        pid = unit.conn.get_server_pid()
    observer = await asyncpg.connect(database_url)  # not the pool: it might hand out pid
    try:
        state = await observer.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
    finally:
        await observer.close()
    assert state == "idle"
