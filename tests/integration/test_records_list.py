"""Record lists: typed filters, sorts, projection, keyset cursors."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from tests.factories import make_dataset

ROWS = [
    {"sku": "a", "name": "Apple", "price": 1.5, "stock": 10, "region": "eu", "active": True},
    {"sku": "b", "name": "Banana", "price": 0.5, "stock": 0, "region": "us", "active": False},
    {"sku": "c", "name": "Cherry", "price": 12, "stock": 5, "region": "eu"},
    {"sku": "d", "name": "Date", "price": 50, "stock": 2, "region": "asia", "active": True},
    {"sku": "e", "name": "Elderberry", "price": 49.99, "region": "eu", "active": True},
]


@pytest.fixture
async def fruit(client: httpx.AsyncClient) -> str:
    ds = await make_dataset(client, primary_key="sku", indexes=["price", "region"])
    for row in ROWS:
        assert (
            await client.post(f"/v1/datasets/{ds['name']}/records", json=row)
        ).status_code == 201
    return str(ds["name"])


async def skus(client: httpx.AsyncClient, ds: str, **params: Any) -> list[str]:
    response = await client.get(f"/v1/datasets/{ds}/records", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def test_equality_and_operators_compare_by_schema_type(
    client: httpx.AsyncClient, fruit: str
) -> None:
    assert await skus(client, fruit, **{"filter[region]": "eu"}) == ["a", "c", "e"]
    assert await skus(client, fruit, **{"filter[price][lt]": "50"}) == ["a", "b", "c", "e"]
    assert await skus(client, fruit, **{"filter[price][gte]": "12"}) == ["c", "d", "e"]
    assert await skus(client, fruit, **{"filter[price][gt]": "9"}) == ["c", "d", "e"]
    assert await skus(client, fruit, **{"filter[region][ne]": "eu"}) == ["b", "d"]
    assert await skus(client, fruit, **{"filter[region][in]": "us,asia"}) == ["b", "d"]
    assert await skus(client, fruit, **{"filter[name][like]": "%rr%"}) == ["c", "e"]
    assert await skus(client, fruit, **{"filter[active]": "true"}) == ["a", "d", "e"]
    assert await skus(client, fruit, **{"filter[stock][lte]": "2"}) == ["b", "d"]
    assert await skus(client, fruit, **{"filter[id][in]": "a,e,zz"}) == ["a", "e"]


async def test_filters_combine_with_and(client: httpx.AsyncClient, fruit: str) -> None:
    params = {"filter[region]": "eu", "filter[price][lt]": "20"}
    assert await skus(client, fruit, **params) == ["a", "c"]


async def test_sort_and_fields(client: httpx.AsyncClient, fruit: str) -> None:
    assert await skus(client, fruit, sort="-price") == ["d", "e", "c", "a", "b"]
    assert await skus(client, fruit, sort="region,-price") == ["d", "e", "c", "a", "b"]
    response = await client.get(f"/v1/datasets/{fruit}/records", params={"fields": "name"})
    assert [item["data"] for item in response.json()["data"]][:2] == [
        {"name": "Apple"},
        {"name": "Banana"},
    ]


@pytest.mark.parametrize("sort", [None, "price", "-price", "region,-price", "-region,stock"])
async def test_cursor_pages_cover_everything_once(
    client: httpx.AsyncClient, fruit: str, sort: str | None
) -> None:
    expected = await skus(client, fruit, **({"sort": sort} if sort else {}))
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2, **({"sort": sort} if sort else {})}
    while True:
        page = (await client.get(f"/v1/datasets/{fruit}/records", params=params)).json()
        seen += [item["id"] for item in page["data"]]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == expected


async def test_cursor_is_stable_under_concurrent_inserts(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    for i in range(0, 20, 2):
        sku = f"k{i:02d}"
        await client.post(f"/v1/datasets/{ds}/records", json={"sku": sku, "name": sku, "price": i})
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    inserted = 1
    while True:
        page = (await client.get(f"/v1/datasets/{ds}/records", params=params)).json()
        seen += [item["id"] for item in page["data"]]
        # Someone inserts between pages, before and after the cursor.
        sku = f"k{inserted:02d}"
        await client.post(f"/v1/datasets/{ds}/records", json={"sku": sku, "name": sku, "price": 1})
        inserted += 2
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert len(seen) == len(set(seen)), "no row is served twice"
    assert {f"k{i:02d}" for i in range(0, 20, 2)} <= set(seen), "no pre-existing row is skipped"


@pytest.mark.parametrize(
    "params",
    [
        {"filter[nope]": "1"},
        {"filter[price][between]": "1"},
        {"filter[price][lt]": "cheap"},
        {"sort": "nope"},
        {"fields": "nope"},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "many"},
        {"cursor": "garbage"},
        {"colour": "red"},
    ],
)
async def test_bad_list_parameters_are_400_problems(
    client: httpx.AsyncClient, fruit: str, params: dict[str, str]
) -> None:
    response = await client.get(f"/v1/datasets/{fruit}/records", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"]


async def test_cursor_from_another_query_is_refused(client: httpx.AsyncClient, fruit: str) -> None:
    page = (await client.get(f"/v1/datasets/{fruit}/records", params={"limit": 1})).json()
    response = await client.get(
        f"/v1/datasets/{fruit}/records",
        params={"limit": 1, "sort": "price", "cursor": page["next_cursor"]},
    )
    assert response.status_code == 400


async def test_indexed_filter_and_sort_use_the_index(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """EXPLAIN the exact SQL the list endpoint runs, on enough rows that a
    sequential scan would be the planner's choice without the index."""
    from entrepot.records import query
    from entrepot.schema.record_schema import RecordSchema
    from tests.factories import PRODUCT_SCHEMA

    ds = await make_dataset(client, primary_key="sku", indexes=["price", "region"])
    conn = await asyncpg.connect(database_url)
    try:
        dataset_id = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", ds["name"])
        await conn.execute(
            f"""
            INSERT INTO records_{dataset_id} (dataset_id, id, version, data)
            SELECT {dataset_id}, 'r' || g, 1, jsonb_build_object(
                'sku', 'r' || g, 'name', 'n' || g, 'price', g % 5000,
                'region', (ARRAY['eu','us','asia'])[1 + g % 3])
            FROM generate_series(1, 60000) g
            """
        )
        await conn.execute(f"ANALYZE records_{dataset_id}")
        schema = RecordSchema.compile(PRODUCT_SCHEMA)
        for params in (
            [("filter[price][lt]", "20")],
            [("filter[price]", "42")],
            [("sort", "-price"), ("limit", "10")],
            [("filter[price][in]", "7,8,9"), ("sort", "price")],
        ):
            parsed = query.parse(params, schema)
            sql, args = query.build_sql(f"records_{dataset_id}", dataset_id, parsed, schema)
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *args))
            assert f"records_{dataset_id}_f_" in plan, plan
            assert "Seq Scan" not in plan, plan
    finally:
        await conn.close()


async def test_lists_are_consistent_while_writers_run(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]

    async def writer(n: int) -> None:
        for i in range(10):
            sku = f"w{n}-{i}"
            await client.post(
                f"/v1/datasets/{ds}/records", json={"sku": sku, "name": sku, "price": i}
            )

    await asyncio.gather(*(writer(n) for n in range(4)))
    assert len(await skus(client, ds, limit=100)) == 40
