"""Access requests and grants, end to end with real credentials.

A provider organisation P publishes a restricted dataset; a consumer
organisation C runs an application that asks for access. P's administrators
approve (possibly narrowing), reject, or later revoke; C's application reads
exactly what its live grant allows, and nothing once the grant is gone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.factories import make_app, make_dataset, make_key, make_org

READ = ["datasets:read", "records:read", "changes:read"]
READ_WRITE = [*READ, "records:write"]
ADMIN = [*READ_WRITE, "admin"]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Party:
    """An organisation with an administering app and an ordinary app."""

    org: str
    admin_key: str
    app_id: str
    app_key: str


async def party(client: httpx.AsyncClient, app_scopes: list[str] = READ_WRITE) -> Party:
    org = (await make_org(client))["name"]
    admin_app = await make_app(client, org, scopes=ADMIN)
    app = await make_app(client, org, scopes=app_scopes)
    return Party(
        org=org,
        admin_key=(await make_key(client, admin_app["id"]))["key"],
        app_id=app["id"],
        app_key=(await make_key(client, app["id"]))["key"],
    )


async def restricted_dataset(client: httpx.AsyncClient, org: str, **overrides: Any) -> str:
    ds = await make_dataset(client, org, visibility="restricted", primary_key="sku", **overrides)
    name = str(ds["name"])
    for sku, price in (("a", 10), ("b", 60), ("c", 120)):
        record = {"sku": sku, "name": f"item {sku}", "price": price, "region": "eu"}
        response = await client.post(f"/v1/datasets/{name}/records", json=record)
        assert response.status_code == 201, response.text
    return name


async def ask(
    client: httpx.AsyncClient, key: str, ds: str, app_id: str, scopes: list[str] = READ
) -> httpx.Response:
    return await client.post(
        f"/v1/datasets/{ds}/access-requests",
        json={"app": app_id, "scopes": scopes, "reason": "we build a price comparison"},
        headers=auth(key),
    )


async def pending_request(
    client: httpx.AsyncClient, consumer: Party, ds: str, scopes: list[str] = READ
) -> str:
    response = await ask(client, consumer.app_key, ds, consumer.app_id, scopes)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"
    return str(response.json()["id"])


async def approve(
    client: httpx.AsyncClient, key: str, request_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/access-requests/{request_id}/approve", json=body, headers=auth(key)
    )


async def reads(client: httpx.AsyncClient, key: str, ds: str) -> dict[str, int]:
    """The status of every read route for ``key`` on ``ds``."""
    urls = {
        "dataset": f"/v1/datasets/{ds}",
        "record": f"/v1/datasets/{ds}/records/a",
        "list": f"/v1/datasets/{ds}/records",
        "export": f"/v1/datasets/{ds}/export?format=ndjson",
    }
    return {
        name: (await client.get(url, headers=auth(key))).status_code for name, url in urls.items()
    }


ALL_HIDDEN = {"dataset": 404, "record": 404, "list": 404, "export": 404}
ALL_OPEN = {"dataset": 200, "record": 200, "list": 200, "export": 200}


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 1.0, every: float = 0.02
) -> float:
    """Seconds until ``check`` holds; fails if it does not hold within ``within``."""
    start = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - start
        if time.monotonic() - start > within:
            pytest.fail(f"condition did not hold within {within} s")
        await asyncio.sleep(every)


async def audit_actions(database_url: str, target: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT action FROM audit_log WHERE target = $1 ORDER BY id", target
        )
    finally:
        await conn.close()
    return [r["action"] for r in rows]


@pytest.fixture
async def provider(client: httpx.AsyncClient) -> Party:
    return await party(client)


@pytest.fixture
async def consumer(client: httpx.AsyncClient) -> Party:
    return await party(client)


# --- the lifecycle ------------------------------------------------------------------


async def test_request_approve_read_revoke(
    client: httpx.AsyncClient, provider: Party, consumer: Party, database_url: str
) -> None:
    ds = await restricted_dataset(client, provider.org)
    assert await reads(client, consumer.app_key, ds) == ALL_HIDDEN

    response = await ask(client, consumer.app_key, ds, consumer.app_id)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["dataset"] == ds
    assert created["app"] == consumer.app_id
    assert created["scopes"] == sorted(READ)
    assert created["reason"] == "we build a price comparison"
    assert created["status"] == "pending"
    assert created["note"] is None
    assert created["decided_at"] is None
    assert created["decided_by"] is None
    assert created["grant_id"] is None
    request_id = created["id"]

    # Asking is not reading.
    assert await reads(client, consumer.app_key, ds) == ALL_HIDDEN

    # The requester follows its request; its org's admin sees it too.
    for key in (consumer.app_key, consumer.admin_key):
        seen = await client.get(f"/v1/access-requests/{request_id}", headers=auth(key))
        assert seen.status_code == 200, seen.text
        assert seen.json()["status"] == "pending"

    # Neither the requester nor its org's admin can approve it.
    for key in (consumer.app_key, consumer.admin_key):
        refused = await approve(client, key, request_id)
        assert refused.status_code in (403, 404), refused.text
    assert await reads(client, consumer.app_key, ds) == ALL_HIDDEN

    # The provider's admin finds it among the pending requests for the dataset.
    inbox = await client.get(
        "/v1/access-requests",
        params={"dataset": ds, "status": "pending"},
        headers=auth(provider.admin_key),
    )
    assert inbox.status_code == 200, inbox.text
    assert [r["id"] for r in inbox.json()["data"]] == [request_id]

    approved = await approve(client, provider.admin_key, request_id, note="welcome")
    assert approved.status_code == 200, approved.text
    decided = approved.json()
    assert decided["status"] == "approved"
    assert decided["note"] == "welcome"
    assert decided["decided_at"] is not None
    assert decided["decided_by"].startswith("app:")
    grant_id = decided["grant_id"]
    assert grant_id

    assert await reads(client, consumer.app_key, ds) == ALL_OPEN
    record = await client.get(f"/v1/datasets/{ds}/records/c", headers=auth(consumer.app_key))
    assert record.json()["data"]["price"] == 120

    grants = await client.get("/v1/grants", params={"dataset": ds}, headers=auth(consumer.app_key))
    assert grants.status_code == 200, grants.text
    [grant] = grants.json()["data"]
    assert grant["id"] == grant_id
    assert grant["app"] == consumer.app_id
    assert grant["dataset"] == ds
    assert grant["scopes"] == sorted(READ)
    assert grant["fields"] is None
    assert grant["row_filter"] is None
    assert grant["status"] == "active"
    assert grant["revoked_at"] is None

    # Deciding twice is a conflict.
    again = await approve(client, provider.admin_key, request_id)
    assert again.status_code == 409, again.text

    revoked = await client.delete(f"/v1/grants/{grant_id}", headers=auth(provider.admin_key))
    assert revoked.status_code == 204, revoked.text

    async def gone() -> bool:
        return await reads(client, consumer.app_key, ds) == ALL_HIDDEN

    await eventually(gone, within=1.0)
    after = await client.get(f"/v1/grants/{grant_id}", headers=auth(consumer.app_key))
    assert after.json()["status"] == "revoked"
    assert after.json()["revoked_at"] is not None

    assert await audit_actions(database_url, f"access_request:{request_id}") == [
        "access_request.created",
        "access_request.approved",
    ]
    assert await audit_actions(database_url, f"grant:{grant_id}") == [
        "grant.created",
        "grant.revoked",
    ]


async def test_reject_with_note_the_requester_can_read(
    client: httpx.AsyncClient, provider: Party, consumer: Party, database_url: str
) -> None:
    ds = await restricted_dataset(client, provider.org)
    request_id = await pending_request(client, consumer, ds)

    twin = await ask(client, consumer.app_key, ds, consumer.app_id)
    assert twin.status_code == 409, twin.text

    rejected = await client.post(
        f"/v1/access-requests/{request_id}/reject",
        json={"note": "only for partners"},
        headers=auth(provider.admin_key),
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["grant_id"] is None

    seen = await client.get(f"/v1/access-requests/{request_id}", headers=auth(consumer.app_key))
    assert seen.json()["status"] == "rejected"
    assert seen.json()["note"] == "only for partners"
    assert seen.json()["decided_by"].startswith("app:")
    assert await reads(client, consumer.app_key, ds) == ALL_HIDDEN

    # A rejected request is decided: it cannot be approved, and the app may ask again.
    late = await approve(client, provider.admin_key, request_id)
    assert late.status_code == 409, late.text
    assert (await ask(client, consumer.app_key, ds, consumer.app_id)).status_code == 201

    assert await audit_actions(database_url, f"access_request:{request_id}") == [
        "access_request.created",
        "access_request.rejected",
    ]


async def test_auto_approve_grants_reads_at_once(
    client: httpx.AsyncClient, provider: Party, consumer: Party
) -> None:
    ds = await restricted_dataset(client, provider.org, auto_approve=True)
    assert await reads(client, consumer.app_key, ds) == ALL_HIDDEN

    response = await ask(client, consumer.app_key, ds, consumer.app_id)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "approved"
    assert body["decided_by"] == "auto"
    assert body["grant_id"]
    assert await reads(client, consumer.app_key, ds) == ALL_OPEN

    # Write access is never handed out automatically: that request waits for a person.
    writer = await party(client)
    waiting = await ask(client, writer.app_key, ds, writer.app_id, READ_WRITE)
    assert waiting.status_code == 201, waiting.text
    assert waiting.json()["status"] == "pending"


async def test_an_expired_grant_stops_working(
    client: httpx.AsyncClient, provider: Party, consumer: Party, database_url: str
) -> None:
    ds = await restricted_dataset(client, provider.org)
    request_id = await pending_request(client, consumer, ds)

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    stale = await approve(client, provider.admin_key, request_id, expires_at=past)
    assert stale.status_code == 422, stale.text
    assert stale.json()["errors"][0]["path"] == "/expires_at"

    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    approved = await approve(client, provider.admin_key, request_id, expires_at=soon)
    assert approved.status_code == 200, approved.text
    grant_id = approved.json()["grant_id"]
    assert await reads(client, consumer.app_key, ds) == ALL_OPEN

    # Time passes: the grant's expiry is now behind us. No announcement is made;
    # the grant cache's one-second bound is all that stands between.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE grants SET expires_at = now() - interval '1 second' WHERE id = $1",
            grant_id,
        )
    finally:
        await conn.close()

    async def expired() -> bool:
        return await reads(client, consumer.app_key, ds) == ALL_HIDDEN

    await eventually(expired, within=1.5)
    grant = await client.get(f"/v1/grants/{grant_id}", headers=auth(consumer.app_key))
    assert grant.json()["status"] == "expired"


async def test_a_write_grant_lets_the_grantee_write(
    client: httpx.AsyncClient, provider: Party, consumer: Party
) -> None:
    ds = await restricted_dataset(client, provider.org)
    new = {"sku": "z", "name": "from the consumer", "price": 5}

    read_only = await pending_request(client, consumer, ds, READ_WRITE)
    approved = await approve(client, provider.admin_key, read_only, scopes=READ)
    assert approved.status_code == 200, approved.text
    denied = await client.post(
        f"/v1/datasets/{ds}/records", json=new, headers=auth(consumer.app_key)
    )
    assert denied.status_code == 403, denied.text

    writer = await pending_request(client, consumer, ds, READ_WRITE)
    approved = await approve(client, provider.admin_key, writer)
    assert approved.status_code == 200, approved.text
    grants = await client.get("/v1/grants", params={"dataset": ds}, headers=auth(consumer.app_key))
    statuses = {g["id"]: g["status"] for g in grants.json()["data"]}
    assert statuses == {
        approved.json()["grant_id"]: "active",
        # the new grant supersedes the read-only one
        next(i for i in statuses if i != approved.json()["grant_id"]): "revoked",
    }

    written = await client.post(
        f"/v1/datasets/{ds}/records", json=new, headers=auth(consumer.app_key)
    )
    assert written.status_code == 201, written.text
    stored = await client.get(f"/v1/datasets/{ds}/records/z")
    assert stored.json()["data"] == new


async def test_narrowed_grants_are_read_only(
    client: httpx.AsyncClient, provider: Party, consumer: Party
) -> None:
    ds = await restricted_dataset(client, provider.org)
    request_id = await pending_request(client, consumer, ds, READ_WRITE)

    for narrowing in (
        {"fields": ["sku", "name"]},
        {"row_filter": {"price": {"lt": 100}}},
        {"fields": ["sku", "name"], "scopes": ["records:read", "records:write"]},
    ):
        refused = await approve(client, provider.admin_key, request_id, **narrowing)
        assert refused.status_code == 422, refused.text
        assert "read-only" in refused.json()["detail"]

    approved = await approve(
        client,
        provider.admin_key,
        request_id,
        scopes=READ,
        fields=["sku", "name"],
        row_filter={"price": {"lt": 100}},
    )
    assert approved.status_code == 200, approved.text
    listed = await client.get(f"/v1/datasets/{ds}/records", headers=auth(consumer.app_key))
    assert listed.status_code == 200, listed.text
    assert sorted((r["id"], r["data"]) for r in listed.json()["data"]) == [
        ("a", {"sku": "a", "name": "item a"}),
        ("b", {"sku": "b", "name": "item b"}),
    ]
    write = await client.post(
        f"/v1/datasets/{ds}/records",
        json={"sku": "q", "name": "n", "price": 1},
        headers=auth(consumer.app_key),
    )
    assert write.status_code == 403, write.text


# --- validation ---------------------------------------------------------------------


async def test_requests_are_validated(
    client: httpx.AsyncClient, provider: Party, consumer: Party
) -> None:
    ds = await restricted_dataset(client, provider.org)
    reader = await party(client, app_scopes=READ)

    unknown = await ask(client, consumer.app_key, "no-such-dataset-xyz", consumer.app_id)
    assert unknown.status_code == 404, unknown.text

    cases: list[tuple[str, str, list[str], str]] = [
        (consumer.app_key, consumer.app_id, ["admin"], "/scopes/0"),
        (consumer.app_key, consumer.app_id, [], "/scopes"),
        (reader.app_key, reader.app_id, READ_WRITE, "/scopes"),  # not held by the app
        (consumer.app_key, reader.app_id, READ, "/app"),  # another org's app
        (reader.admin_key, consumer.app_id, READ, "/app"),  # an admin, but of another org
        (consumer.app_key, "not-a-uuid", READ, "/app"),
        (provider.admin_key, (await make_app(client, provider.org))["id"], READ, "/app"),  # owner
    ]
    for key, app_id, scopes, path in cases:
        response = await ask(client, key, ds, app_id, scopes)
        assert response.status_code == 422, (scopes, path, response.text)
        assert response.json()["errors"][0]["path"].startswith(path), response.text

    # An admin of the app's org may ask on its behalf.
    on_behalf = await ask(client, consumer.admin_key, ds, consumer.app_id)
    assert on_behalf.status_code == 201, on_behalf.text


async def test_approvals_are_validated(
    client: httpx.AsyncClient, provider: Party, consumer: Party
) -> None:
    ds = await restricted_dataset(client, provider.org)
    request_id = await pending_request(client, consumer, ds, ["datasets:read", "records:read"])

    cases: list[tuple[dict[str, Any], str]] = [
        ({"scopes": ["records:read", "changes:read"]}, "/scopes"),
        ({"fields": ["sku", "nope"]}, "/fields/1"),
        ({"fields": ["name", "price"]}, "/fields"),  # the primary key cannot be hidden
        ({"fields": []}, "/fields"),
        ({"row_filter": {"nope": 1}}, "/row_filter/nope"),
        ({"row_filter": {"price": {"between": [1, 2]}}}, "/row_filter/price/between"),
        ({"row_filter": {"price": {"lt": None}}}, "/row_filter/price/lt"),
        ({"row_filter": {"price": {"in": "x"}}}, "/row_filter/price/in"),
        ({"row_filter": "price<5"}, "/row_filter"),
        ({"expires_at": "yesterday"}, "/expires_at"),
    ]
    for body, path in cases:
        response = await approve(client, provider.admin_key, request_id, **body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"][0]["path"] == path, (body, response.text)

    still = await client.get(f"/v1/access-requests/{request_id}", headers=auth(consumer.app_key))
    assert still.json()["status"] == "pending"

    missing = await approve(client, provider.admin_key, "8d9a5b8e-0000-4000-8000-000000000000")
    assert missing.status_code == 404, missing.text
    garbage = await approve(client, provider.admin_key, "not-an-id")
    assert garbage.status_code == 404, garbage.text


# --- visibility and tenant isolation -------------------------------------------------------


async def test_tenants_see_and_change_only_their_own_grants(
    client: httpx.AsyncClient, provider: Party, consumer: Party
) -> None:
    ds = await restricted_dataset(client, provider.org)
    other = await party(client)
    stranger = await party(client)

    mine = await pending_request(client, consumer, ds)
    theirs = await pending_request(client, other, ds)
    mine_grant = (await approve(client, provider.admin_key, mine)).json()["grant_id"]
    theirs_grant = (await approve(client, provider.admin_key, theirs)).json()["grant_id"]

    async def grant_ids(key: str, **params: str) -> set[str]:
        response = await client.get("/v1/grants", params=params, headers=auth(key))
        assert response.status_code == 200, response.text
        return {g["id"] for g in response.json()["data"]}

    async def request_ids(key: str, **params: str) -> set[str]:
        response = await client.get("/v1/access-requests", params=params, headers=auth(key))
        assert response.status_code == 200, response.text
        return {r["id"] for r in response.json()["data"]}

    # The provider sees every grant on its dataset; each consumer only its own.
    assert await grant_ids(provider.admin_key, dataset=ds) == {mine_grant, theirs_grant}
    assert await grant_ids(consumer.admin_key, dataset=ds) == {mine_grant}
    assert await grant_ids(consumer.app_key) == {mine_grant}
    assert await grant_ids(consumer.admin_key, app=other.app_id) == set()
    assert await grant_ids(stranger.admin_key) == set()
    assert await request_ids(provider.admin_key, dataset=ds) == {mine, theirs}
    assert await request_ids(consumer.admin_key) == {mine}
    assert await request_ids(stranger.admin_key, dataset=ds) == set()

    for key in (consumer.admin_key, consumer.app_key, stranger.admin_key):
        peek = await client.get(f"/v1/grants/{theirs_grant}", headers=auth(key))
        assert peek.status_code == 404, peek.text
        revoke = await client.delete(f"/v1/grants/{theirs_grant}", headers=auth(key))
        assert revoke.status_code == 404, revoke.text
        request = await client.get(f"/v1/access-requests/{theirs}", headers=auth(key))
        assert request.status_code == 404, request.text
    assert await reads(client, other.app_key, ds) == ALL_OPEN

    # A grantee app may see its grant but only its org's admin may give it up.
    refused = await client.delete(f"/v1/grants/{mine_grant}", headers=auth(consumer.app_key))
    assert refused.status_code == 403, refused.text
    relinquished = await client.delete(f"/v1/grants/{mine_grant}", headers=auth(consumer.admin_key))
    assert relinquished.status_code == 204, relinquished.text
    again = await client.delete(f"/v1/grants/{mine_grant}", headers=auth(consumer.admin_key))
    assert again.status_code == 204, again.text

    async def gone() -> bool:
        return await reads(client, consumer.app_key, ds) == ALL_HIDDEN

    await eventually(gone)
    assert await reads(client, other.app_key, ds) == ALL_OPEN


async def test_the_platform_admin_sees_everything(
    client: httpx.AsyncClient, provider: Party, consumer: Party
) -> None:
    ds = await restricted_dataset(client, provider.org)
    request_id = await pending_request(client, consumer, ds)
    listed = await client.get("/v1/access-requests", params={"dataset": ds})
    assert [r["id"] for r in listed.json()["data"]] == [request_id]
    approved = await client.post(f"/v1/access-requests/{request_id}/approve", json={})
    assert approved.status_code == 200, approved.text
    grants = await client.get("/v1/grants", params={"app": consumer.app_id})
    assert [g["id"] for g in grants.json()["data"]] == [approved.json()["grant_id"]]


async def test_lists_page_newest_first(
    client: httpx.AsyncClient, provider: Party, consumer: Party
) -> None:
    made = []
    for _ in range(3):
        ds = await restricted_dataset(client, provider.org)
        made.append(await pending_request(client, consumer, ds))
    seen: list[str] = []
    params: dict[str, str] = {"limit": "2", "app": consumer.app_id}
    while True:
        page = await client.get(
            "/v1/access-requests", params=params, headers=auth(consumer.app_key)
        )
        assert page.status_code == 200, page.text
        seen += [r["id"] for r in page.json()["data"]]
        if page.json()["next_cursor"] is None:
            break
        params["cursor"] = page.json()["next_cursor"]
    assert seen == list(reversed(made))

    for bad in ({"cursor": "garbage"}, {"app": "not-a-uuid"}, {"status": "maybe"}):
        response = await client.get("/v1/access-requests", params=bad)
        assert response.status_code == 400, response.text


async def test_the_provider_sees_who_asks_by_name_and_organisation(
    client: httpx.AsyncClient, provider: Party, consumer: Party
) -> None:
    """Deciding needs to know who asks: the app's name and its organisation, and
    nothing else of it (not its keys, scopes or other grants)."""
    ds = await restricted_dataset(client, provider.org)
    app = (await client.get(f"/v1/apps/{consumer.app_id}")).json()
    request_id = await pending_request(client, consumer, ds)
    inbox = await client.get(
        "/v1/access-requests", params={"dataset": ds}, headers=auth(provider.admin_key)
    )
    [entry] = inbox.json()["data"]
    assert (entry["app"], entry["app_name"], entry["app_org"]) == (
        consumer.app_id,
        app["name"],
        consumer.org,
    )
    assert set(entry) == {
        "id", "dataset", "app", "app_name", "app_org", "scopes", "reason", "status", "note",
        "requested_by", "created_at", "decided_at", "decided_by", "grant_id",
    }  # fmt: skip
    one = await client.get(f"/v1/access-requests/{request_id}", headers=auth(provider.admin_key))
    assert one.json() == entry
    decided = await approve(client, provider.admin_key, request_id)
    assert (decided.json()["app_name"], decided.json()["app_org"]) == (app["name"], consumer.org)
    # The provider still cannot read the app itself.
    assert (
        await client.get(f"/v1/apps/{consumer.app_id}", headers=auth(provider.admin_key))
    ).status_code == 404
