"""Plans are cached, except where a statement asks to be planned for its values.

The pool leaves PostgreSQL's plan cache on (a record write or a read by id costs
less to run than to plan); a list whose best plan depends on its filter's values
asks for them in its own read-only transaction, and nothing of that stays on the
pooled connection afterwards.
"""

from __future__ import annotations

import asyncpg
import pytest
from fastapi import FastAPI

from entrepot.store.work import reads, unit_of_work


async def _mode(conn: asyncpg.pool.PoolConnectionProxy) -> str:
    mode: str = await conn.fetchval("SELECT current_setting('plan_cache_mode')")
    return mode


async def test_pooled_connections_cache_plans(app: FastAPI) -> None:
    async with reads(app.state.components.get(asyncpg.Pool)) as unit:
        assert await _mode(unit.conn) == "auto"


async def test_a_block_planned_for_values_is_a_read_only_transaction_that_leaves_nothing(
    app: FastAPI,
) -> None:
    async with reads(app.state.components.get(asyncpg.Pool)) as unit:
        async with unit.planned_for_values():
            assert unit.conn.is_in_transaction()
            assert await _mode(unit.conn) == "force_custom_plan"
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await unit.conn.execute("CREATE TEMP TABLE nope (x int)")
        assert not unit.conn.is_in_transaction()
        assert await _mode(unit.conn) == "auto"


async def test_in_a_unit_of_work_it_plans_the_units_own_transaction(app: FastAPI) -> None:
    async with unit_of_work(app.state.components.get(asyncpg.Pool), lazy=True) as work:
        assert not work.in_transaction
        async with work.planned_for_values():
            assert await _mode(work.conn) == "force_custom_plan"
        assert work.in_transaction  # begun for it, and ended with the unit
    async with reads(app.state.components.get(asyncpg.Pool)) as unit:
        assert await _mode(unit.conn) == "auto"
