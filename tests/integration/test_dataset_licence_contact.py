"""A dataset's licence and contact: catalogue metadata a provider gives and every
caller who sees the dataset reads (issue 11), validated for shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import app_key, granted, make_app, make_dataset, make_key, make_org

LICENCE = {
    "license": "CC-BY-4.0",
    "license_url": "https://creativecommons.org/licenses/by/4.0/",
    "contact": {"name": "Data team", "email": "data@example.org", "url": "https://example.org/ask"},
}


async def test_create_get_list_and_patch_carry_them(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client, **LICENCE)
    assert {k: ds[k] for k in LICENCE} == LICENCE
    name = ds["name"]
    fetched = (await client.get(f"/v1/datasets/{name}")).json()
    assert {k: fetched[k] for k in LICENCE} == LICENCE
    [listed] = (await client.get("/v1/datasets", params={"org": ds["org"]})).json()["data"]
    assert listed == fetched

    patched = await client.patch(
        f"/v1/datasets/{name}", json={"license": "ODbL-1.0", "contact": {"email": "x@example.org"}}
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["license"] == "ODbL-1.0"
    assert body["license_url"] == LICENCE["license_url"]  # not given: kept
    assert body["contact"] == {"name": None, "email": "x@example.org", "url": None}  # replaced

    cleared = await client.patch(
        f"/v1/datasets/{name}", json={"license_url": None, "contact": None}
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["license_url"], cleared.json()["contact"]) == (None, None)
    assert cleared.json()["license"] == "ODbL-1.0"
    assert (await client.get(f"/v1/datasets/{name}")).json() == cleared.json()


async def test_a_dataset_without_them_says_null(client: httpx.AsyncClient) -> None:
    ds = await make_dataset(client)
    assert (ds["license"], ds["license_url"], ds["contact"]) == (None, None, None)


@pytest.mark.parametrize(
    ("given", "path"),
    [
        ({"contact": {"email": "not an address"}}, "/contact/email"),
        ({"contact": {"email": "two@@example.org"}}, "/contact/email"),
        ({"contact": {"url": "javascript:alert(1)"}}, "/contact/url"),
        ({"contact": {"url": "example.org/ask"}}, "/contact/url"),
        ({"contact": {}}, "/contact"),
        ({"contact": {"phone": "123"}}, "/contact/phone"),
        ({"license_url": "ftp://example.org/licence"}, "/license_url"),
        ({"license_url": "https://"}, "/license_url"),
        ({"license": ""}, "/license"),
        ({"license": "x" * 101}, "/license"),
    ],
)
async def test_bad_shapes_are_refused_naming_the_field(
    client: httpx.AsyncClient, given: dict[str, Any], path: str
) -> None:
    ds = await make_dataset(client)
    for response in (
        await client.patch(f"/v1/datasets/{ds['name']}", json=given),
        await client.post(
            "/v1/datasets",
            json={"name": ds["name"] + "-b", "org": ds["org"], "title": "T", "schema": ds["schema"]}
            | given,
        ),
    ):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert path in [e["path"] for e in response.json()["errors"]], response.json()
    assert (await client.get(f"/v1/datasets/{ds['name'] + '-b'}")).status_code == 404


async def test_a_narrowed_grantee_sees_them(client: httpx.AsyncClient) -> None:
    """Licence and contact are about the dataset, not its records: narrowing the
    records' fields hides none of them."""
    provider = (await make_org(client))["name"]
    owner_key = await app_key(client, provider, ["admin"])
    ds = await make_dataset(client, org=provider, visibility="restricted", **LICENCE)
    consumer = (await make_org(client))["name"]
    app = await make_app(client, consumer, scopes=["datasets:read", "records:read"])
    key = (await make_key(client, app["id"]))["key"]
    await granted(client, ds["name"], app["id"], key, owner_key, fields=["sku", "name"])
    as_grantee = {"Authorization": f"Bearer {key}"}

    seen = (await client.get(f"/v1/datasets/{ds['name']}", headers=as_grantee)).json()
    assert list(seen["schema"]["properties"]) == ["sku", "name"]  # narrowed indeed
    assert {k: seen[k] for k in LICENCE} == LICENCE
    [listed] = (
        await client.get("/v1/datasets", params={"org": provider}, headers=as_grantee)
    ).json()["data"]
    assert {k: listed[k] for k in LICENCE} == LICENCE
