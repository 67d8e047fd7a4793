"""Organisations and datasets: creation, search, schema evolution, deletion."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import PRODUCT_SCHEMA, make_dataset, make_org, unique


async def test_org_names_are_unique(client: httpx.AsyncClient) -> None:
    org = await make_org(client)
    again = await client.post("/v1/orgs", json={"name": org["name"], "title": "Again"})
    assert again.status_code == 409
    assert (await client.get(f"/v1/orgs/{org['name']}")).json()["title"] == "Org"


async def test_dataset_round_trip(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, tags=["retail"], indexes=["price"])
    fetched = await client.get(f"/v1/datasets/{ds['name']}")
    assert fetched.status_code == 200
    body = fetched.json()
    assert body["schema"] == PRODUCT_SCHEMA
    assert body["tags"] == ["retail"]
    assert body["indexes"] == ["price"]
    assert body["schema_version"] == 1


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"schema": {"type": "object", "properties": {"a": {"type": "wat"}}}}, 422),
        ({"schema": {"type": "array"}}, 422),
        ({"schema": {"$ref": "http://127.0.0.1:9/evil.json", "type": "object"}}, 422),
        ({"schema": {"type": "object", "$schema": "http://json-schema.org/draft-04/schema#"}}, 422),
        ({"primary_key": "nope"}, 422),
        ({"primary_key": "price"}, 422),
        ({"indexes": ["nope"]}, 422),
        ({"name": "Not A Slug"}, 422),
        ({"visibility": "secret"}, 422),
        ({"org": "no-such-org"}, 422),
        ({"surprise": 1}, 422),
    ],
)
async def test_invalid_dataset_definitions_are_refused(
    client: httpx.AsyncClient, overrides: dict[str, Any], status: int
) -> None:
    org = (await make_org(client))["name"]
    payload = {"name": unique("ds"), "org": org, "title": "T", "schema": PRODUCT_SCHEMA}
    payload.update(overrides)
    response = await client.post("/v1/datasets", json=payload)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"]


async def test_duplicate_dataset_name_is_409(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client)
    payload = {"name": ds["name"], "org": ds["org"], "title": "T", "schema": PRODUCT_SCHEMA}
    assert (await client.post("/v1/datasets", json=payload)).status_code == 409


async def test_catalog_search_by_text_org_and_tag(client: httpx.AsyncClient) -> None:
    org = (await make_org(client))["name"]
    word = unique("zebra").replace("-", "")
    target = await make_dataset(client, org=org, title=f"All about {word}", tags=["stripes"])
    await make_dataset(client, org=org, title="Something else", tags=["plain"])
    found = (await client.get("/v1/datasets", params={"q": word})).json()["data"]
    assert [d["name"] for d in found] == [target["name"]]
    by_org = (await client.get("/v1/datasets", params={"org": org})).json()["data"]
    assert len(by_org) == 2
    by_tag = (await client.get("/v1/datasets", params={"org": org, "tag": "stripes"})).json()
    assert [d["name"] for d in by_tag["data"]] == [target["name"]]


async def test_catalog_pages_with_cursor(client: httpx.AsyncClient) -> None:
    org = (await make_org(client))["name"]
    names = sorted([(await make_dataset(client, org=org))["name"] for _ in range(5)])
    seen: list[str] = []
    params: dict[str, Any] = {"org": org, "limit": 2}
    while True:
        page = (await client.get("/v1/datasets", params=params)).json()
        seen += [d["name"] for d in page["data"]]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == names


async def test_compatible_schema_change_is_accepted(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client)
    await client.post(
        f"/v1/datasets/{ds['name']}/records", json={"sku": "a", "name": "A", "price": 1}
    )
    wider = {
        **PRODUCT_SCHEMA,
        "properties": {**PRODUCT_SCHEMA["properties"], "colour": {"type": "string"}},
    }
    response = await client.patch(f"/v1/datasets/{ds['name']}", json={"schema": wider})
    assert response.status_code == 200
    assert response.json()["schema_version"] == 2
    created = await client.post(
        f"/v1/datasets/{ds['name']}/records",
        json={"sku": "b", "name": "B", "price": 1, "colour": "red"},
    )
    assert created.status_code == 201


async def test_schema_change_that_invalidates_records_is_409(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client)
    await client.post(
        f"/v1/datasets/{ds['name']}/records", json={"sku": "a", "name": "A", "price": 1}
    )
    stricter = {**PRODUCT_SCHEMA, "required": [*PRODUCT_SCHEMA["required"], "stock"]}
    response = await client.patch(f"/v1/datasets/{ds['name']}", json={"schema": stricter})
    assert response.status_code == 409
    assert response.json()["errors"][0]["path"].startswith("/records/")
    assert (await client.get(f"/v1/datasets/{ds['name']}")).json()["schema_version"] == 1


async def test_schema_change_applies_to_the_next_write(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client)
    stricter = {**PRODUCT_SCHEMA, "required": [*PRODUCT_SCHEMA["required"], "stock"]}
    assert (
        await client.patch(f"/v1/datasets/{ds['name']}", json={"schema": stricter})
    ).status_code == 200
    late = await client.post(
        f"/v1/datasets/{ds['name']}/records", json={"sku": "a", "name": "A", "price": 1}
    )
    assert late.status_code == 422


async def test_metadata_patch_and_index_changes(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, indexes=["price"])
    response = await client.patch(
        f"/v1/datasets/{ds['name']}",
        json={
            "title": "New title",
            "indexes": ["region"],
            "tags": ["x"],
            "visibility": "restricted",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["title"], body["indexes"], body["tags"], body["visibility"]) == (
        "New title",
        ["region"],
        ["x"],
        "restricted",
    )


async def test_primary_key_is_immutable(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, primary_key="sku")
    response = await client.patch(f"/v1/datasets/{ds['name']}", json={"primary_key": "name"})
    assert response.status_code == 409


async def test_delete_dataset_removes_records(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, primary_key="sku")
    await client.post(
        f"/v1/datasets/{ds['name']}/records", json={"sku": "a", "name": "A", "price": 1}
    )
    assert (await client.delete(f"/v1/datasets/{ds['name']}")).status_code == 204
    assert (await client.get(f"/v1/datasets/{ds['name']}")).status_code == 404
    assert (await client.get(f"/v1/datasets/{ds['name']}/records/a")).status_code == 404
    recreated = await make_dataset(client, org=ds["org"], name=ds["name"], primary_key="sku")
    assert (await client.get(f"/v1/datasets/{recreated['name']}/records/a")).status_code == 404
