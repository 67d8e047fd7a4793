"""A started worker holds exactly its connection budget on the server, by name: its two
pools filled and its LISTEN loops; a connection the budget does not count fails here."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from entrepot.settings import Settings
from entrepot.store.budget import WORKER_DEDICATED, Budget
from entrepot.store.bulk_slots import BulkSlots
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
    expected = Counter(
        {"entrepot": POOL, "entrepot-bulk": BULK}
        | {f"entrepot-listen-{d.name}": 1 for d in WORKER_DEDICATED}
    )
    assert sum(expected.values()) == budget.per_worker
    async with app_and_client(settings) as (application, client):
        assert (await client.get("/v1/datasets")).status_code == 200
        bulk = application.state.components.get(BulkSlots).pool
        held = [await bulk.acquire() for _ in range(BULK)]  # the bulk pool opens on demand
        try:
            await until(
                lambda: _equal(url, expected), "the worker's connections, as budgeted", every=0.1
            )
            await asyncio.sleep(1)  # and nothing opens later on
            assert await connections(url) == expected
        finally:
            for conn in held:
                await bulk.release(conn)


async def _equal(url: str, expected: Counter[str]) -> bool:
    return await connections(url) == expected
