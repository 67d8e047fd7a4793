"""A started worker holds exactly its connection budget on the server, by name: its two
pools filled and its LISTEN loops; a connection the budget does not count fails here."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from entrepot.settings import Settings
from entrepot.store.budget import WORKER_DEDICATED, Budget
from entrepot.store.bulk_slots import BulkSlots
from entrepot.store.pool import PlannedPool, planned_share
from tests.conftest import ADMIN_TOKEN, app_and_client, prepared_database
from tests.waiting import until

POOL, BULK = 3, 2


async def connections(url: str) -> Counter[str]:
    """The sessions on ``url``'s database but this one, by application_name."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT application_name FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return Counter(row["application_name"] for row in rows)


async def test_a_worker_holds_its_budget_and_no_more(fresh_database: object) -> None:
    url = await prepared_database(fresh_database)
    settings = Settings(
        database_url=url,
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        pool_min_size=POOL,
        pool_max_size=POOL,
        bulk_pool_size=BULK,
    )
    budget = Budget.of(settings)
    planned = planned_share(settings)
    assert planned > 0  # the planned pool takes its share of the request pool's
    expected = Counter(
        {"entrepot": POOL - planned, "entrepot-planned": planned, "entrepot-bulk": BULK}
        | {f"entrepot-listen-{d.name}": 1 for d in WORKER_DEDICATED}
    )
    assert sum(expected.values()) == budget.per_worker
    async with app_and_client(settings) as (application, client):
        assert (await client.get("/v1/datasets")).status_code == 200
        # The bulk and planned pools open on demand: fill them.
        bulk = application.state.components.get(BulkSlots).pool
        lists = application.state.components.get(PlannedPool).pool
        held = [(bulk, await bulk.acquire()) for _ in range(BULK)]
        held += [(lists, await lists.acquire()) for _ in range(planned)]
        try:
            await until(
                lambda: _equal(url, expected), "the worker's connections, as budgeted", every=0.1
            )
            await asyncio.sleep(1)  # and nothing opens later on
            assert await connections(url) == expected
        finally:
            for pool, conn in held:
                await pool.release(conn)


async def _equal(url: str, expected: Counter[str]) -> bool:
    return await connections(url) == expected
