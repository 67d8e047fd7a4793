"""Strict JSON: an object that repeats a key is refused as malformed JSON is (400), naming
the key and its path, on every body the API parses; nothing is written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from entrepot.http import StrictJsonRoute
from tests.factories import make_dataset, make_org, unique
from tests.integration.bulk_helpers import post_import

JSON = {"Content-Type": "application/json"}
NUMS: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "meta": {"type": "object"}, "at": {}},
}


def refused(response: httpx.Response, path: str, key: str) -> None:
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"].endswith("/bad-request")
    assert problem["errors"] == [
        {"path": path, "message": f'the key "{key}" appears more than once in one object'}
    ]
    assert problem["detail"].startswith("The body is not valid JSON: ")


@pytest.fixture
async def nums(client: httpx.AsyncClient) -> str:
    name: str = (await make_dataset(client, schema=NUMS, primary_key="id"))["name"]
    return name


async def test_a_record_repeating_a_key_is_refused_and_not_stored(
    client: httpx.AsyncClient, nums: str
) -> None:
    url = f"/v1/datasets/{nums}/records"
    refused(await client.post(url, content='{"id":7,"id":8}', headers=JSON), "/id", "id")
    listed = await client.get(url)
    assert listed.json()["data"] == []


async def test_a_repeat_is_found_at_any_depth(client: httpx.AsyncClient, nums: str) -> None:
    body = '{"id": 1, "meta": {"k": [{"a": 1}, {"b": 1, "b": 2}]}}'
    response = await client.post(f"/v1/datasets/{nums}/records", content=body, headers=JSON)
    refused(response, "/meta/k/1/b", "b")


async def test_replacing_and_patching_refuse_repeats_too(
    client: httpx.AsyncClient, nums: str
) -> None:
    url = f"/v1/datasets/{nums}/records"
    assert (await client.post(url, json={"id": 3})).status_code == 201
    put = await client.put(f"{url}/3", content='{"id": 3, "at": 1, "at": 2}', headers=JSON)
    refused(put, "/at", "at")
    patch = await client.patch(f"{url}/3", content='{"at": 1, "at": null}', headers=JSON)
    refused(patch, "/at", "at")
    assert (await client.get(f"{url}/3")).json()["version"] == 1


async def test_colons_and_escapes_in_strings_are_not_repeats(
    client: httpx.AsyncClient, nums: str
) -> None:
    body = r'{"id": 4, "at": "12:30:00", "meta": {"a:b": "\u003a", "q": "\":\"", "b": ":"}}'
    response = await client.post(f"/v1/datasets/{nums}/records", content=body, headers=JSON)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["meta"] == {"a:b": ":", "q": '":"', "b": ":"}


async def test_an_import_reports_each_repeating_line_like_any_bad_line(
    client: httpx.AsyncClient, nums: str
) -> None:
    body = '{"id": 1}\n{"id": 2, "id": 3}\n{"id": 4, "meta": {"x": 1, "x": 1}}\n'
    response = await post_import(client, nums, body, on_error="skip")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["inserted"] == 1
    assert report["errors"] == [
        {
            "line": 2,
            "errors": [
                {"path": "/id", "message": 'the key "id" appears more than once in one object'}
            ],
        },
        {
            "line": 3,
            "errors": [
                {"path": "/meta/x", "message": 'the key "x" appears more than once in one object'}
            ],
        },
    ]
    all_or_nothing = await post_import(client, nums, '{"id": 9, "id": 9}\n')
    assert all_or_nothing.status_code == 422, all_or_nothing.text
    assert all_or_nothing.json()["errors"][0]["line"] == 1


async def test_catalog_and_admin_bodies_refuse_repeats(client: httpx.AsyncClient) -> None:
    name = unique("org")
    body = f'{{"name": "{name}", "title": "T", "name": "{name}-2"}}'
    refused(await client.post("/v1/orgs", content=body, headers=JSON), "/name", "name")
    assert (await client.get(f"/v1/orgs/{name}-2")).status_code == 404

    org = (await make_org(client))["name"]
    dataset = (
        f'{{"name": "{unique("ds")}", "org": "{org}", "title": "T", "schema": '
        '{"type": "object", "properties": {"a": {}, "a": {"type": "string"}}}}'
    )
    refused(
        await client.post("/v1/datasets", content=dataset, headers=JSON),
        "/schema/properties/a",
        "a",
    )

    ds = (await make_dataset(client))["name"]
    patch = '{"title": "one", "title": "two"}'
    refused(
        await client.patch(f"/v1/datasets/{ds}", content=patch, headers=JSON), "/title", "title"
    )
    assert (await client.get(f"/v1/datasets/{ds}")).json()["title"] == "Products"


async def test_malformed_json_is_a_400_on_every_route(client: httpx.AsyncClient, nums: str) -> None:
    for url in ("/v1/orgs", f"/v1/datasets/{nums}/records"):
        response = await client.post(url, content='{"name": ', headers=JSON)
        assert response.status_code == 400, response.text
        assert response.json()["errors"] == [
            {"path": "", "message": "a value was expected (line 1, column 10)"}
        ]


def test_every_route_with_a_json_body_reads_it_strictly(app: FastAPI) -> None:
    """FastAPI keeps an included router's routes behind one entry of ``app.routes``."""
    routes: list[APIRoute] = []
    for entry in app.routes:
        contexts = getattr(entry, "effective_route_contexts", None)
        for each in contexts() if contexts is not None else [entry]:
            route = each.original_route if contexts is not None else each
            if isinstance(route, APIRoute) and route.body_field is not None:
                routes.append(route)
    assert len(routes) >= 15, "the routes were not found: has FastAPI changed how it keeps them?"
    assert [r.path for r in routes if not isinstance(r, StrictJsonRoute)] == []
