"""A dataset deleted by another replica, read through this replica's catalog cache.

Each replica trusts its dataset metadata for up to a second. A request that
arrives in that second finds the dataset's table gone: it must answer 404,
as it will a moment later, never a 500.
"""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from entrepot.catalog import repository as catalog_repo
from entrepot.changes import repository as changes_repo
from entrepot.store.sql import changes_table
from tests.factories import make_dataset
from tests.integration.test_access_requests import eventually


async def deleted_elsewhere(database_url: str, name: str) -> None:
    """Delete the dataset the way another replica would: this one's cache is not told."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            dataset_id = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", name)
            await catalog_repo.delete_dataset(conn, dataset_id)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/records/a", None),
        ("GET", "/records", None),
        ("PUT", "/records/a", {"sku": "a", "name": "A", "price": 2}),
        ("DELETE", "/records/a", None),
        ("GET", "/export", None),
        ("GET", "/changes", None),
    ],
)
async def test_a_dataset_dropped_by_another_replica_is_a_404(
    client: httpx.AsyncClient, database_url: str, method: str, path: str, body: object
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    created = await client.post(
        f"/v1/datasets/{ds}/records", json={"sku": "a", "name": "A", "price": 1}
    )
    assert created.status_code == 201, created.text
    assert (await client.get(f"/v1/datasets/{ds}/records/a")).status_code == 200  # cached now
    await deleted_elsewhere(database_url, ds)

    response = await client.request(method, f"/v1/datasets/{ds}{path}", json=body)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# --- the change log of a deleted dataset: one partition, dropped whole --------------

PARTITION = """
SELECT to_regclass($1) IS NOT NULL AS present,
       EXISTS (SELECT 1 FROM pg_inherits
               WHERE inhparent = 'changes'::regclass AND inhrelid = to_regclass($1)) AS attached
"""


async def test_deleting_a_dataset_drops_its_change_log_partition_and_a_new_one_starts_fresh(
    client: httpx.AsyncClient, database_url: str
) -> None:
    created = await make_dataset(client, primary_key="sku")
    ds, org = created["name"], created["org"]
    url = f"/v1/datasets/{ds}/records"
    for sku in "abc":
        assert (
            await client.post(url, json={"sku": sku, "name": sku, "price": 1})
        ).status_code == 201
    conn = await asyncpg.connect(database_url)
    try:
        dataset_id = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", ds)
        table = changes_table(dataset_id)
        assert dict(await conn.fetchrow(PARTITION, table)) == {"present": True, "attached": True}
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 3

        assert (await client.delete(f"/v1/datasets/{ds}")).status_code == 204

        async def dropped() -> bool:
            state = await conn.fetchrow(PARTITION, table)
            queued = await conn.fetchval(
                "SELECT count(*) FROM retired_change_logs WHERE dataset_id = $1", dataset_id
            )
            assert state is not None
            return not state["present"] and not state["attached"] and not queued

        await eventually(dropped, within=30)  # detached, then dropped, by the feed waker

        await make_dataset(client, org, name=ds, primary_key="sku")
        again = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", ds)
        assert again != dataset_id
        assert dict(await conn.fetchrow(PARTITION, changes_table(again))) == {
            "present": True,
            "attached": True,
        }
    finally:
        await conn.close()
    assert (await client.post(url, json={"sku": "z", "name": "z", "price": 2})).status_code == 201
    page = (await client.get(f"/v1/datasets/{ds}/changes")).json()
    assert [(c["seq"], c["id"]) for c in page["changes"]] == [(1, "z")]
    assert page["last_seq"] == 1


async def test_a_detach_interrupted_midway_is_finished_on_the_next_try(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """DETACH ... CONCURRENTLY commits its first half, then waits for the log's users;
    cut off there, it leaves the partition 'detach pending'. drop_log finishes it."""
    created = await make_dataset(client, primary_key="sku")
    ds = created["name"]
    url = f"/v1/datasets/{ds}/records"
    assert (await client.post(url, json={"sku": "a", "name": "a", "price": 1})).status_code == 201
    other = (await make_dataset(client, primary_key="sku"))["name"]
    conn = await asyncpg.connect(database_url)
    user = await asyncpg.connect(database_url)
    try:
        dataset_id = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", ds)
        other_id = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", other)
        table = changes_table(dataset_id)
        async with conn.transaction():
            await catalog_repo.delete_dataset(conn, dataset_id)
            # The deletion queued the log and deleted none of its rows: no cascade.
            assert await conn.fetchval(
                "SELECT count(*) FROM retired_change_logs WHERE dataset_id = $1", dataset_id
            )
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 1
            # Kept from the feed waker: this test drives the detach.
            await conn.execute("DELETE FROM retired_change_logs WHERE dataset_id = $1", dataset_id)

        reading = user.transaction()
        await reading.start()
        await user.fetchval("SELECT count(*) FROM changes WHERE dataset_id = $1", other_id)
        await conn.execute("SET statement_timeout = 500")
        with pytest.raises(asyncpg.QueryCanceledError):
            await conn.execute(f"ALTER TABLE changes DETACH PARTITION {table} CONCURRENTLY")
        await conn.execute("RESET statement_timeout")
        assert await conn.fetchval(
            "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass($1)", table
        )
        await reading.rollback()

        assert await changes_repo.drop_log(conn, dataset_id)
        assert dict(await conn.fetchrow(PARTITION, table)) == {"present": False, "attached": False}
        assert not await changes_repo.drop_log(conn, dataset_id)  # again: nothing left to do
    finally:
        await user.close()
        await conn.close()
