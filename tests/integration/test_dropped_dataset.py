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
from tests.factories import make_dataset


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
