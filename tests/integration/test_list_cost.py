"""What one list request may cost: an index, or a small dataset, or a refusal that says why.

On a dataset above ENTREPOT_UNINDEXED_SCAN_ROWS records (PostgreSQL's estimate),
a list no index can serve is refused with a 400 naming the fields to index; any
list still running after ENTREPOT_LIST_TIMEOUT_MS is cancelled on the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from entrepot.settings import Settings
from tests.conftest import app_and_client
from tests.factories import make_dataset

ROWS = 3_000


@pytest.fixture(scope="module")
async def strict(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app refusing unindexed scans above 1,000 records, cancelling lists after 0.3 s."""
    strict_settings = settings.model_copy(
        update={"unindexed_scan_rows": 1_000, "list_timeout_ms": 300}
    )
    async with app_and_client(strict_settings) as started:
        yield started


async def filled(client: httpx.AsyncClient, database_url: str, rows: int) -> str:
    """A dataset indexed on price holding ``rows`` records, analysed."""
    ds = (await make_dataset(client, primary_key="sku", indexes=["price"]))["name"]
    conn = await asyncpg.connect(database_url)
    try:
        dataset_id = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", ds)
        table = f"records_{int(dataset_id)}"
        await conn.execute(
            f"INSERT INTO {table} (dataset_id, id, version, data) "
            f"SELECT {int(dataset_id)}, 'k' || g, 1, jsonb_build_object("
            "'sku', 'k' || g, 'name', 'n' || g, 'price', g % 100, 'region', 'eu') "
            "FROM generate_series(1, $1::int) g",
            rows,
        )
        await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()
    return ds


async def listed(client: httpx.AsyncClient, ds: str, **params: Any) -> httpx.Response:
    return await client.get(f"/v1/datasets/{ds}/records", params=params)


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"filter[name]": "n7"}, ["name"]),
        ({"filter[name][like]": "n7*"}, ["name"]),
        ({"filter[price][ne]": "5"}, ["price"]),  # no index serves "not equal"
        ({"filter[name]": "n7", "filter[region]": "eu"}, ["name", "region"]),
        ({"sort": "name"}, ["name"]),
        ({"sort": "-region,price"}, ["region"]),
    ],
)
async def test_a_list_no_index_serves_is_refused_on_a_large_dataset(
    strict: tuple[FastAPI, httpx.AsyncClient],
    database_url: str,
    params: dict[str, str],
    fields: list[str],
) -> None:
    _, client = strict
    ds = await filled(client, database_url, ROWS)
    response = await listed(client, ds, **params)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert [e["path"] for e in problem["errors"]] == [f"query:{f}" for f in fields]
    assert "index" in problem["detail"]
    assert "indexed field (price)" in problem["detail"]  # what would serve it
    assert f"PATCH /v1/datasets/{ds}" in problem["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"filter[price][lt]": "3"},
        {"filter[price]": "7", "filter[name]": "n7"},  # the index finds them, then filters
        {"filter[price][in]": "1,2", "sort": "name"},
        {"sort": "-price"},
        {"filter[id]": "k7"},
        {"filter[id][gte]": "k9", "filter[name][like]": "n9*"},
    ],
)
async def test_a_list_an_index_serves_is_answered(
    strict: tuple[FastAPI, httpx.AsyncClient], database_url: str, params: dict[str, str]
) -> None:
    _, client = strict
    ds = await filled(client, database_url, ROWS)
    response = await listed(client, ds, **params)
    assert response.status_code == 200, response.text


async def test_a_small_dataset_may_be_scanned(
    strict: tuple[FastAPI, httpx.AsyncClient], database_url: str
) -> None:
    _, client = strict
    ds = await filled(client, database_url, 500)
    response = await listed(client, ds, **{"filter[name]": "n7"})
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()["data"]] == ["k7"]


async def test_a_list_running_too_long_is_cancelled_and_says_why(
    strict: tuple[FastAPI, httpx.AsyncClient], database_url: str
) -> None:
    _, client = strict
    ds = await filled(client, database_url, 500)
    conn = await asyncpg.connect(database_url)
    try:
        dataset_id = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", ds)
        async with conn.transaction():  # the list waits on this lock past its time limit
            await conn.execute(f"LOCK TABLE records_{int(dataset_id)} IN ACCESS EXCLUSIVE MODE")
            slow_scan = await listed(client, ds, **{"filter[name]": "n7"})
            slow_index = await listed(client, ds, **{"filter[price]": "7"})
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
    finally:
        await conn.close()
    assert slow_scan.status_code == 400, slow_scan.text
    assert [e["path"] for e in slow_scan.json()["errors"]] == ["query:name"]
    assert slow_index.status_code == 503, slow_index.text
    assert "Retry-After" in slow_index.headers
    assert waiting == 0  # both were cancelled on the server, not left running
