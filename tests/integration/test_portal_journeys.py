"""The consumer's journey through the portal over HTTP (no browser): find a dataset, ask
for access, be approved narrowed by the provider (in a browser of their own), make a
key, call the API with it, see the call in the usage chart; a secret shown once; and a
narrowed grantee who never sees a hidden field or row on any portal page (issue 11)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import make_org, unique
from tests.integration.portal_helpers import csrf_of, make_person, post_form, sign_in

BASE = "http://testserver"
SCHEMA = {
    "type": "object",
    "required": ["sku", "price"],
    "properties": {
        "sku": {"type": "string", "description": "Stock keeping unit"},
        "price": {"type": "number", "minimum": 0},
        "region": {"type": "string"},
        "unitcostsecret": {"type": "number"},
    },
}
HIDDEN_FIELD = "unitcostsecret"


@dataclass
class World:
    dataset: str
    provider_org: str
    consumer_org: str
    provider: str  # emails
    consumer: str
    hidden_sku: str
    visible_sku: str


@pytest.fixture
async def world(client: httpx.AsyncClient) -> World:
    provider_org = (await make_org(client))["name"]
    consumer_org = (await make_org(client))["name"]
    ds = unique("prices")
    made = await client.post(
        "/v1/datasets",
        json={
            "name": ds,
            "org": provider_org,
            "title": "Wholesale prices",
            "description": "Prices by region",
            "schema": SCHEMA,
            "primary_key": "sku",
            "visibility": "restricted",
        },
    )
    assert made.status_code == 201, made.text
    visible, hidden = unique("eu-sku"), unique("us-sku")
    for sku, region in ((visible, "eu"), (hidden, "us")):
        put = await client.put(
            f"/v1/datasets/{ds}/records/{sku}",
            json={"sku": sku, "price": 10, "region": region, HIDDEN_FIELD: 7777.25},
        )
        assert put.status_code == 201, put.text
    return World(
        ds,
        provider_org,
        consumer_org,
        await make_person(client, provider_org),
        await make_person(client, consumer_org),
        hidden,
        visible,
    )


@pytest.fixture
async def browsers(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE) as consumer,
        httpx.AsyncClient(transport=transport, base_url=BASE) as provider,
    ):
        yield consumer, provider


async def register_app(consumer: httpx.AsyncClient) -> str:
    name = unique("storefront")
    made = await post_form(
        consumer,
        "/portal/apps",
        "/portal/apps",
        {"name": name, "scopes": ["datasets:read", "records:read"]},
    )
    assert made.status_code == 201, made.text
    assert "shown only on this page" in made.text
    found = re.search(r'href="/portal/apps/([0-9a-f-]{36})"', made.text)
    assert found, made.text
    return found.group(1)


async def request_and_approve(
    world: World, consumer: httpx.AsyncClient, provider: httpx.AsyncClient, app_id: str
) -> None:
    hidden = await consumer.get(f"/portal/catalog/{world.dataset}")
    assert hidden.status_code == 404  # restricted: not visible before a grant
    asked = await consumer.post(
        f"/portal/catalog/{world.dataset}/access-requests",
        data={
            "csrf_token": csrf_of(hidden.text),
            "app": app_id,
            "scopes": ["datasets:read", "records:read"],
            "reason": "prices in the shop",
        },
    )
    assert asked.status_code == 303, asked.text
    pending = await consumer.get("/portal/requests")
    assert world.dataset in pending.text
    assert ">pending<" in pending.text

    await sign_in(provider, world.provider)
    inbox = await provider.get("/portal/approvals")
    assert world.dataset in inbox.text
    request_id = re.search(r'action="/portal/approvals/([0-9a-f-]{36})/approve"', inbox.text)
    assert request_id, inbox.text
    approved = await provider.post(
        f"/portal/approvals/{request_id.group(1)}/approve",
        data={
            "csrf_token": csrf_of(inbox.text),
            "scopes": ["datasets:read", "records:read"],
            "narrow_fields": "on",
            "fields": ["sku", "price", "region"],
            "row_filter": '{"region": "eu"}',
            "note": "EU only",
        },
    )
    assert approved.status_code == 303, approved.text
    assert ">approved<" in (await consumer.get("/portal/requests")).text


async def test_the_consumer_journey(
    world: World,
    browsers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    app: FastAPI,
) -> None:
    consumer, provider = browsers
    await sign_in(consumer, world.consumer)
    app_id = await register_app(consumer)
    await request_and_approve(world, consumer, provider, app_id)

    page = await consumer.get(f"/portal/apps/{app_id}")
    made = await consumer.post(
        f"/portal/apps/{app_id}/keys", data={"csrf_token": csrf_of(page.text), "name": "prod"}
    )
    assert made.status_code == 201, made.text
    key = re.search(r'value="(ent_[^"]+)"', made.text)
    assert key, made.text
    secret = key.group(1)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE,
        headers={"Authorization": f"Bearer {secret}"},
    ) as api:
        listed = await api.get(f"/v1/datasets/{world.dataset}/records")
    assert listed.status_code == 200, listed.text
    assert [r["id"] for r in listed.json()["data"]] == [world.visible_sku]

    shown = await consumer.get(f"/portal/apps/{app_id}")
    assert secret not in shown.text  # the secret was in one answer only
    assert secret[:12] in shown.text  # its prefix, in the key list and the quickstart
    assert f"/v1/datasets/{world.dataset}/records" in shown.text
    bars = [int(n) for n in re.findall(r'data-count="(\d+)"', shown.text)]
    assert sum(bars) >= 1  # the call above, in the chart


async def test_a_secret_is_shown_once(
    world: World, browsers: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    consumer, _ = browsers
    await sign_in(consumer, world.consumer)
    app_id = await register_app(consumer)
    page = await consumer.get(f"/portal/apps/{app_id}")
    made = await consumer.post(
        f"/portal/apps/{app_id}/keys", data={"csrf_token": csrf_of(page.text), "name": "k"}
    )
    secret = re.search(r'value="(ent_[^"]+)"', made.text)
    assert secret
    assert made.headers["cache-control"] == "no-store"
    for path in ("/portal/", "/portal/apps", f"/portal/apps/{app_id}", "/portal/requests"):
        again = await consumer.get(path)
        assert secret.group(1) not in again.text, path
    key_id = re.search(
        r'/keys/([0-9a-f-]{36})/rotate"', (await consumer.get(f"/portal/apps/{app_id}")).text
    )
    assert key_id
    rotated = await consumer.post(
        f"/portal/apps/{app_id}/keys/{key_id.group(1)}/rotate",
        data={"csrf_token": csrf_of(page.text)},
    )
    assert rotated.status_code == 201
    new = re.search(r'value="(ent_[^"]+)"', rotated.text)
    assert new
    assert new.group(1) != secret.group(1)
    assert new.group(1) not in (await consumer.get(f"/portal/apps/{app_id}")).text
    revoked = await consumer.post(
        f"/portal/apps/{app_id}/keys/{key_id.group(1)}/revoke",
        data={"csrf_token": csrf_of(page.text)},
    )
    assert revoked.status_code == 303
    assert ">revoked<" in (await consumer.get(f"/portal/apps/{app_id}")).text


async def test_a_narrowed_grantee_never_sees_hidden_fields_or_rows(
    world: World, browsers: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    consumer, provider = browsers
    await sign_in(consumer, world.consumer)
    app_id = await register_app(consumer)
    await request_and_approve(world, consumer, provider, app_id)

    as_app = await consumer.get(f"/portal/catalog/{world.dataset}?app={app_id}")
    assert as_app.status_code == 200, as_app.text
    assert world.visible_sku in as_app.text  # the grant works: its rows and fields show
    assert "Stock keeping unit" in as_app.text
    pages = [
        "/portal/",
        "/portal/catalog",
        f"/portal/catalog?q={world.dataset}",
        f"/portal/catalog/{world.dataset}",
        f"/portal/catalog/{world.dataset}?app={app_id}",
        "/portal/requests",
        "/portal/apps",
        f"/portal/apps/{app_id}",
        "/portal/approvals",
        "/portal/account",
    ]
    for path in pages:
        shown = await consumer.get(path)
        assert shown.status_code in (200, 404), (path, shown.status_code)
        for secret in (HIDDEN_FIELD, world.hidden_sku, "7777.25", "us-sku"):
            assert secret not in shown.text, (path, secret)
    # Its owner sees all of it, counts included.
    owner = await provider.get(f"/portal/catalog/{world.dataset}")
    assert HIDDEN_FIELD in owner.text
    assert world.hidden_sku in owner.text
    assert "Changes, last 24 hours" in owner.text
