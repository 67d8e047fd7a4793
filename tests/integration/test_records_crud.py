"""Records: create, read, replace, merge-patch, delete; versions and ETags."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import make_dataset

WIDGET = {"sku": "w-1", "name": "Widget", "price": 9.5, "stock": 3}


async def test_create_then_get_returns_envelope_with_strong_etag(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client)
    created = await client.post(f"/v1/datasets/{ds['name']}/records", json=WIDGET)
    assert created.status_code == 201
    body = created.json()
    assert body["version"] == 1
    assert body["data"] == WIDGET
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/v1/datasets/{ds['name']}/records/{body['id']}"

    fetched = await client.get(created.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert fetched.headers["ETag"] == '"1"'
    assert body["created_at"].endswith("Z")


async def test_if_none_match_gives_304(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client)
    loc = (await client.post(f"/v1/datasets/{ds['name']}/records", json=WIDGET)).headers["Location"]
    assert (await client.get(loc, headers={"If-None-Match": '"1"'})).status_code == 304
    assert (await client.get(loc, headers={"If-None-Match": 'W/"1"'})).status_code == 304
    assert (await client.get(loc, headers={"If-None-Match": '"2"'})).status_code == 200


async def test_every_change_bumps_version_by_one(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, primary_key="sku")
    url = f"/v1/datasets/{ds['name']}/records/w-1"
    assert (await client.put(url, json=WIDGET)).json()["version"] == 1
    assert (await client.put(url, json={**WIDGET, "price": 10})).json()["version"] == 2
    patched = await client.patch(url, json={"stock": None, "name": "Big widget"})
    assert patched.status_code == 200
    assert patched.json()["version"] == 3
    assert patched.json()["data"] == {"sku": "w-1", "name": "Big widget", "price": 10}
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404


async def test_put_creates_with_201_and_replaces_with_200(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, primary_key="sku")
    url = f"/v1/datasets/{ds['name']}/records/w-1"
    first = await client.put(url, json=WIDGET)
    assert first.status_code == 201
    assert first.headers["Location"] == url
    assert (await client.put(url, json=WIDGET)).status_code == 200


async def test_stale_if_match_is_412_and_changes_nothing(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, primary_key="sku")
    url = f"/v1/datasets/{ds['name']}/records/w-1"
    await client.put(url, json=WIDGET)
    await client.put(url, json={**WIDGET, "price": 11})
    for method, kwargs in (
        ("PUT", {"json": {**WIDGET, "price": 99}}),
        ("PATCH", {"json": {"price": 99}}),
        ("DELETE", {}),
    ):
        response = await client.request(method, url, headers={"If-Match": '"1"'}, **kwargs)
        assert response.status_code == 412, method
        assert response.headers["content-type"] == "application/problem+json"
    current = (await client.get(url)).json()
    assert current["version"] == 2
    assert current["data"]["price"] == 11
    ok = await client.put(url, json={**WIDGET, "price": 12}, headers={"If-Match": '"2"'})
    assert ok.status_code == 200
    assert ok.json()["version"] == 3


async def test_if_none_match_star_creates_only_when_absent(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, primary_key="sku")
    url = f"/v1/datasets/{ds['name']}/records/w-1"
    assert (await client.put(url, json=WIDGET, headers={"If-None-Match": "*"})).status_code == 201
    assert (await client.put(url, json=WIDGET, headers={"If-None-Match": "*"})).status_code == 412


async def test_require_if_match_dataset_answers_428(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, primary_key="sku", require_if_match=True)
    url = f"/v1/datasets/{ds['name']}/records/w-1"
    assert (await client.post(f"/v1/datasets/{ds['name']}/records", json=WIDGET)).status_code == 201
    assert (await client.put(url, json=WIDGET)).status_code == 428
    assert (await client.patch(url, json={"price": 1})).status_code == 428
    assert (await client.delete(url)).status_code == 428
    assert (
        await client.patch(url, json={"price": 1}, headers={"If-Match": '"1"'})
    ).status_code == 200


async def test_primary_key_mismatch_with_path_is_422(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, primary_key="sku")
    response = await client.put(f"/v1/datasets/{ds['name']}/records/other", json=WIDGET)
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "/sku"


async def test_duplicate_primary_key_on_post_is_409(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, primary_key="sku")
    url = f"/v1/datasets/{ds['name']}/records"
    assert (await client.post(url, json=WIDGET)).status_code == 201
    assert (await client.post(url, json=WIDGET)).status_code == 409


async def test_invalid_record_is_422_with_paths(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client)
    response = await client.post(
        f"/v1/datasets/{ds['name']}/records", json={"sku": "x", "name": 5, "price": -1}
    )
    assert response.status_code == 422
    doc = response.json()
    assert doc["status"] == 422
    assert {e["path"] for e in doc["errors"]} == {"/name", "/price"}


async def test_unknown_record_and_dataset_are_404(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client)
    assert (await client.get(f"/v1/datasets/{ds['name']}/records/nope")).status_code == 404
    assert (await client.get("/v1/datasets/no-such-ds/records/x")).status_code == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_a_record_id_over_the_limit_in_the_url_is_a_400_saying_so(
    client: httpx.AsyncClient, method: str
) -> None:
    ds = (await make_dataset(client))["name"]
    body = {"json": {"name": "n", "price": 1}} if method in ("PUT", "PATCH") else {}
    answer = await client.request(method, f"/v1/datasets/{ds}/records/{'x' * 256}", **body)
    assert answer.status_code == 400, answer.text
    problem = answer.json()
    assert problem["errors"] == [
        {"path": "path:record_id", "message": "record ids are at most 255 characters"}
    ]
    assert "x" * 256 not in problem["detail"]
