"""Integer primary keys sort as numbers: lists, cursor pages, sorts, filters, exports.

Record ids are text in the store; a dataset whose primary key is declared
integer orders them as numbers everywhere ids are ordered, from an index.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from tests.factories import granted, make_app, make_dataset, make_key, make_org

NUMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "group": {"type": "string"}},
    "required": ["id"],
}
# The key is not called "id": the list language's ``id`` is then the record id itself.
CODES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "group": {"type": "string"}},
    "required": ["n"],
}
IDS = [1, 2, 10, 9, 100, -5, 0, -40, 12345678901234567890123]
NUMERIC_ORDER = [str(i) for i in sorted(IDS)]


async def keyed(client: httpx.AsyncClient, schema: dict[str, Any], key: str, **extra: Any) -> str:
    ds: str = (await make_dataset(client, schema=schema, primary_key=key, **extra))["name"]
    for i, value in enumerate(IDS):
        body = {key: value, "group": "ab"[i % 2]}
        response = await client.post(f"/v1/datasets/{ds}/records", json=body)
        assert response.status_code == 201, response.text
    return ds


@pytest.fixture
async def nums(client: httpx.AsyncClient) -> str:
    return await keyed(client, NUMS_SCHEMA, "id", indexes=["group"])


@pytest.fixture
async def codes(client: httpx.AsyncClient) -> str:
    return await keyed(client, CODES_SCHEMA, "n")


async def ids(client: httpx.AsyncClient, ds: str, **params: Any) -> list[str]:
    response = await client.get(f"/v1/datasets/{ds}/records", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def paged(client: httpx.AsyncClient, ds: str, **params: Any) -> list[str]:
    seen: list[str] = []
    query: dict[str, Any] = {"limit": 2, **params}
    while True:
        response = await client.get(f"/v1/datasets/{ds}/records", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["data"]]
        if not page["next_cursor"]:
            return seen
        query["cursor"] = page["next_cursor"]


async def test_a_list_is_in_numeric_id_order(client: httpx.AsyncClient, nums: str) -> None:
    assert await ids(client, nums) == NUMERIC_ORDER


async def test_cursor_pages_walk_numeric_order_in_every_direction(
    client: httpx.AsyncClient, nums: str, codes: str
) -> None:
    assert await paged(client, nums) == NUMERIC_ORDER
    assert await paged(client, nums, sort="-id") == NUMERIC_ORDER[::-1]
    assert await paged(client, codes, sort="id") == NUMERIC_ORDER
    assert await paged(client, codes, sort="-id") == NUMERIC_ORDER[::-1]


async def test_ties_of_a_sorted_field_break_in_numeric_id_order(
    client: httpx.AsyncClient, nums: str
) -> None:
    a = [str(v) for i, v in enumerate(IDS) if i % 2 == 0]
    b = [str(v) for i, v in enumerate(IDS) if i % 2 == 1]
    by_number = sorted(a, key=int), sorted(b, key=int)
    assert await paged(client, nums, sort="group") == by_number[0] + by_number[1]
    assert await paged(client, nums, sort="-group") == (by_number[1][::-1] + by_number[0][::-1])
    # Mixed directions (``id`` is the key field here, a number in the data).
    assert await paged(client, nums, sort="-group,id") == (by_number[1] + by_number[0])


async def test_filters_on_the_id_compare_numbers(client: httpx.AsyncClient, codes: str) -> None:
    assert await ids(client, codes, **{"filter[id][gt]": "9"}) == ["10", "100", NUMERIC_ORDER[-1]]
    assert await ids(client, codes, **{"filter[id][lte]": "-5"}) == ["-40", "-5"]
    assert await ids(client, codes, **{"filter[id][in]": "100,2,7"}) == ["2", "100"]
    assert await ids(client, codes, **{"filter[id]": "10"}) == ["10"]
    assert await ids(client, codes, **{"filter[id][like]": "1*"}) == [
        "1",
        "10",
        "100",
        NUMERIC_ORDER[-1],
    ]
    response = await client.get(f"/v1/datasets/{codes}/records", params={"filter[id]": "ten"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "query:filter[id]"


async def test_a_forged_cursor_is_refused_not_failed(client: httpx.AsyncClient, nums: str) -> None:
    import base64

    page = (await client.get(f"/v1/datasets/{nums}/records", params={"limit": 1})).json()
    raw = page["next_cursor"] + "=" * (-len(page["next_cursor"]) % 4)
    doc = json.loads(base64.urlsafe_b64decode(raw))
    doc["p"] = ["nine"]
    forged = base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()
    response = await client.get(
        f"/v1/datasets/{nums}/records", params={"limit": 1, "cursor": forged}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "query:cursor"


async def test_exports_are_in_numeric_id_order(client: httpx.AsyncClient, nums: str) -> None:
    ndjson = await client.get(f"/v1/datasets/{nums}/export", params={"format": "ndjson"})
    assert [str(json.loads(line)["id"]) for line in ndjson.text.splitlines()] == NUMERIC_ORDER
    csv = await client.get(f"/v1/datasets/{nums}/export", params={"format": "csv"})
    assert [line.split(",")[0] for line in csv.text.splitlines()[1:]] == NUMERIC_ORDER


async def test_string_keys_keep_text_order(client: httpx.AsyncClient) -> None:
    schema = {"type": "object", "properties": {"k": {"type": ["string", "integer"]}}}
    ds = (await make_dataset(client, schema=schema, primary_key="k"))["name"]
    for value in (1, "10", 9, "b"):
        assert (await client.post(f"/v1/datasets/{ds}/records", json={"k": value})).is_success
    assert await ids(client, ds) == ["1", "10", "9", "b"]


async def test_the_key_type_cannot_change_after_creation(
    client: httpx.AsyncClient, nums: str
) -> None:
    schema = {**NUMS_SCHEMA, "properties": {**NUMS_SCHEMA["properties"]}}
    schema["properties"]["id"] = {"type": ["integer", "string"]}
    response = await client.patch(f"/v1/datasets/{nums}", json={"schema": schema})
    assert response.status_code == 409, response.text
    assert response.json()["errors"] == [
        {"path": "/schema/properties/id/type", "message": "must stay integer"}
    ]
    # Other changes to the key's schema are fine.
    schema["properties"]["id"] = {"type": "integer", "description": "the number"}
    assert (await client.patch(f"/v1/datasets/{nums}", json={"schema": schema})).status_code == 200
    assert await ids(client, nums) == NUMERIC_ORDER


async def test_lists_and_exports_read_the_numeric_index(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """EXPLAIN what the list and export run, on enough rows that without the index
    PostgreSQL would sort the whole dataset for every page."""
    from entrepot.datasets.registry import READ_COLUMNS, meta_from_row
    from entrepot.records import query

    ds = (await make_dataset(client, schema=CODES_SCHEMA, primary_key="n", indexes=["group"]))[
        "name"
    ]
    conn = await asyncpg.connect(database_url)
    try:
        meta = meta_from_row(
            await conn.fetchrow(f"SELECT {READ_COLUMNS} FROM datasets WHERE name = $1", ds)
        )
        await conn.execute(
            f"INSERT INTO {meta.table} (dataset_id, id, version, data) "
            f"SELECT {meta.id}, g::text, 1, jsonb_build_object('n', g, 'group', 'g' || g % 7) "
            "FROM generate_series(-30000, 30000) g"
        )
        await conn.execute(f"ANALYZE {meta.table}")
        for params, index in (
            ([("limit", "10")], f"{meta.table}_id_numeric"),
            ([("sort", "-id"), ("limit", "10")], f"{meta.table}_id_numeric"),
            ([("sort", "group"), ("limit", "10")], f"{meta.table}_f_"),
        ):
            parsed = query.parse(params, meta.schema)
            sql, args = query.build_sql(meta.table, meta.id, parsed, meta.schema)
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *args))
            assert index in plan, plan
            assert "Sort" not in plan.replace("Sort Key", ""), plan
        sql, args = query.build_export_sql(meta.table, meta.id, meta.schema, ())
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *args))
        assert f"{meta.table}_id_numeric" in plan, plan
    finally:
        await conn.close()


async def test_a_grant_row_filter_on_the_id_compares_numbers(client: httpx.AsyncClient) -> None:
    """A row filter written with the id as text (as grants were before ids were numbers)
    is read as the number it spells."""
    provider = (await make_org(client))["name"]
    ds = await keyed(client, CODES_SCHEMA, "n", org=provider, visibility="restricted")
    owner = await make_app(client, provider, scopes=["datasets:read", "admin"])
    owner_key = (await make_key(client, owner["id"]))["key"]
    app = await make_app(client, (await make_org(client))["name"])
    key = (await make_key(client, app["id"]))["key"]
    await granted(client, ds, app["id"], key, owner_key, row_filter={"id": {"lt": "10"}})
    response = await client.get(
        f"/v1/datasets/{ds}/records", headers={"Authorization": f"Bearer {key}"}
    )
    assert [r["id"] for r in response.json()["data"]] == ["-40", "-5", "0", "1", "2", "9"]
    refused = await client.post(
        f"/v1/datasets/{ds}/access-requests",
        json={"app": app["id"], "scopes": ["datasets:read"], "reason": "r"},
        headers={"Authorization": f"Bearer {key}"},
    )
    approval = await client.post(
        f"/v1/access-requests/{refused.json()['id']}/approve",
        json={"row_filter": {"id": {"lt": "ten"}}},
        headers={"Authorization": f"Bearer {owner_key}"},
    )
    assert approval.status_code == 422, approval.text
    assert approval.json()["errors"][0]["path"] == "/row_filter/id/lt"
