"""The schema's declared order is the order people read: the schema as declared, CSV
columns, and the keys of records wherever a record is served (reads, lists, writes,
exports, the change feed)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.factories import make_dataset

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "zeta": {"type": "string"},
        "alpha": {"type": "integer"},
        "b": {"type": "string"},
    },
    "required": ["code"],
}
DECLARED = ["code", "zeta", "alpha", "b"]


def keys(text: str) -> list[str]:
    """The keys of a JSON object in the order the text has them."""
    return list(json.loads(text))


@pytest.fixture
async def ds(client: httpx.AsyncClient) -> str:
    name: str = (await make_dataset(client, schema=SCHEMA, primary_key="code"))["name"]
    return name


async def test_the_schema_comes_back_as_declared(client: httpx.AsyncClient, ds: str) -> None:
    dataset = (await client.get(f"/v1/datasets/{ds}")).json()
    assert list(dataset["schema"]) == list(SCHEMA)
    assert list(dataset["schema"]["properties"]) == DECLARED
    listed = (await client.get("/v1/datasets", params={"q": ds})).json()["data"]
    assert [list(d["schema"]["properties"]) for d in listed if d["name"] == ds] == [DECLARED]


async def test_csv_columns_follow_the_declared_order(client: httpx.AsyncClient, ds: str) -> None:
    await client.post(
        f"/v1/datasets/{ds}/records", json={"b": "x", "alpha": 1, "code": "k1", "zeta": "z"}
    )
    csv = await client.get(f"/v1/datasets/{ds}/export", params={"format": "csv"})
    assert csv.text.splitlines() == ["code,zeta,alpha,b", "k1,z,1,x"]


async def test_record_keys_follow_the_declared_order_everywhere(
    client: httpx.AsyncClient, ds: str
) -> None:
    written = await client.post(
        f"/v1/datasets/{ds}/records", json={"b": "x", "alpha": 1, "code": "k1", "zeta": "z"}
    )
    assert keys(json.dumps(written.json()["data"])) == DECLARED
    read = await client.get(f"/v1/datasets/{ds}/records/k1")
    assert list(read.json()["data"]) == DECLARED
    listed = await client.get(f"/v1/datasets/{ds}/records")
    assert [list(r["data"]) for r in listed.json()["data"]] == [DECLARED]
    replaced = await client.put(
        f"/v1/datasets/{ds}/records/k1", json={"zeta": "y", "code": "k1", "b": "w"}
    )
    assert list(replaced.json()["data"]) == ["code", "zeta", "b"]
    patched = await client.patch(f"/v1/datasets/{ds}/records/k1", json={"alpha": 2})
    assert list(patched.json()["data"]) == DECLARED
    export = await client.get(f"/v1/datasets/{ds}/export", params={"format": "ndjson"})
    assert [keys(line) for line in export.text.splitlines()] == [DECLARED]
    feed = (await client.get(f"/v1/datasets/{ds}/changes")).json()["changes"]
    assert [list(c["data"]) for c in feed] == [DECLARED, ["code", "zeta", "b"], DECLARED]


async def test_keys_the_schema_does_not_declare_come_after_in_code_point_order(
    client: httpx.AsyncClient, ds: str
) -> None:
    body = {"yy": 1, "b": "x", "Z": 2, "code": "k2", "aa": {"n2": 1, "n10": 2}}
    await client.post(f"/v1/datasets/{ds}/records", json=body)
    read = await client.get(f"/v1/datasets/{ds}/records/k2")
    assert list(read.json()["data"]) == ["code", "b", "Z", "aa", "yy"]


async def test_fields_come_in_the_order_asked_for(client: httpx.AsyncClient, ds: str) -> None:
    await client.post(f"/v1/datasets/{ds}/records", json={"code": "k3", "b": "x", "alpha": 1})
    listed = await client.get(f"/v1/datasets/{ds}/records", params={"fields": "b,code"})
    assert [list(r["data"]) for r in listed.json()["data"]] == [["b", "code"]]


async def test_reordering_keeps_numbers_exactly(client: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string"}, "big": {"type": "integer"}, "x": {}},
    }
    ds = (await make_dataset(client, schema=schema, primary_key="code"))["name"]
    body = (
        '{"x": [0.1, 1.5e-7, 100000000000000000000], "big": 12345678901234567890123, "code": "n"}'
    )
    written = await client.post(
        f"/v1/datasets/{ds}/records", content=body, headers={"Content-Type": "application/json"}
    )
    assert written.status_code == 201, written.text
    read = await client.get(f"/v1/datasets/{ds}/records/n")
    data = read.text.split('"data":', 1)[1]
    assert data.startswith('{"code":"n","big":12345678901234567890123,"x":[0.1,')
    assert read.json()["data"]["x"] == [0.1, 1.5e-7, 100000000000000000000]


async def test_a_schema_declared_again_in_another_order_is_a_new_version(
    client: httpx.AsyncClient, ds: str
) -> None:
    await client.post(f"/v1/datasets/{ds}/records", json={"code": "k4", "b": "x", "alpha": 1})
    reordered = {**SCHEMA, "properties": {k: SCHEMA["properties"][k] for k in reversed(DECLARED)}}
    response = await client.patch(f"/v1/datasets/{ds}", json={"schema": reordered})
    assert response.status_code == 200, response.text
    assert response.json()["schema_version"] == 2
    assert list(response.json()["schema"]["properties"]) == DECLARED[::-1]
    read = await client.get(f"/v1/datasets/{ds}/records/k4")
    assert list(read.json()["data"]) == ["b", "alpha", "code"]
    csv = await client.get(f"/v1/datasets/{ds}/export", params={"format": "csv"})
    assert csv.text.splitlines()[0] == "b,alpha,zeta,code"
    # The same document again changes nothing.
    again = await client.patch(f"/v1/datasets/{ds}", json={"schema": reordered})
    assert again.json()["schema_version"] == 2


async def test_a_closed_schema_in_the_stores_order_is_served_as_stored(
    client: httpx.AsyncClient,
) -> None:
    """No record can hold other keys and jsonb already orders these as declared."""
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "bb": {}, "ccc": {}},
        "additionalProperties": False,
    }
    ds = (await make_dataset(client, schema=schema, primary_key="a"))["name"]
    await client.post(f"/v1/datasets/{ds}/records", json={"ccc": 1, "a": "k", "bb": 2})
    read = await client.get(f"/v1/datasets/{ds}/records/k")
    assert '"data":{"a": "k", "bb": 2, "ccc": 1}' in read.text  # PostgreSQL's own text
