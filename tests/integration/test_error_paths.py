"""Problem paths are JSON Pointers (RFC 6901), and the whole document is "" everywhere:
record validation, request bodies, bulk lines, merge patches."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import make_dataset
from tests.integration.bulk_helpers import ndjson, post_import

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def ds(client: httpx.AsyncClient) -> str:
    name: str = (await make_dataset(client, primary_key="sku"))["name"]
    await client.post(f"/v1/datasets/{name}/records", json={"sku": "a", "name": "A", "price": 1})
    return name


def paths(response: httpx.Response) -> list[str]:
    assert response.status_code in (400, 422), response.text
    return [e["path"] for e in response.json()["errors"]]


async def test_a_record_that_is_not_an_object_is_faulted_at_the_root(
    client: httpx.AsyncClient, ds: str
) -> None:
    response = await client.post(f"/v1/datasets/{ds}/records", content="[1]", headers=JSON)
    assert paths(response) == [""]


async def test_a_missing_required_property_is_faulted_at_the_root(
    client: httpx.AsyncClient, ds: str
) -> None:
    response = await client.post(f"/v1/datasets/{ds}/records", json={"sku": "b", "price": -1})
    assert sorted(paths(response)) == ["", "/price"]


async def test_a_merge_patch_is_faulted_at_the_root_too(client: httpx.AsyncClient, ds: str) -> None:
    url = f"/v1/datasets/{ds}/records/a"
    assert paths(await client.patch(url, content="3", headers=JSON)) == [""]
    assert paths(await client.patch(url, json={"name": None})) == [""]


async def test_bulk_lines_are_faulted_at_the_root(client: httpx.AsyncClient, ds: str) -> None:
    body = ndjson({"sku": "c", "price": 1}, [1]) + "{nope\n"
    response = await post_import(client, ds, body, on_error="skip")
    assert response.status_code == 200, response.text
    assert [(e["line"], [x["path"] for x in e["errors"]]) for e in response.json()["errors"]] == [
        (1, [""]),
        (2, [""]),
        (3, [""]),
    ]


async def test_a_request_body_is_faulted_at_the_root(client: httpx.AsyncClient) -> None:
    assert paths(await client.post("/v1/orgs", json=[1])) == [""]
    assert paths(await client.post("/v1/orgs", json={"title": "T"})) == ["/name"]


async def test_pointer_segments_are_escaped(client: httpx.AsyncClient) -> None:
    schema = {"type": "object", "properties": {"a/b": {"type": "integer"}, "c~d": {}}}
    name = (await make_dataset(client, schema=schema))["name"]
    response = await client.post(f"/v1/datasets/{name}/records", json={"a/b": "x"})
    assert paths(response) == ["/a~1b"]
