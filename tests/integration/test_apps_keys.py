"""Applications and their credentials: secrets shown once, keys revocable at once,
rotation with an overlap, and no way across the tenant boundary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from entrepot.settings import Settings
from tests.factories import make_app, make_key, make_org, unique


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def status_with(anon: httpx.AsyncClient, key: str) -> int:
    return (await anon.get("/v1/datasets", headers=bearer(key))).status_code


async def client_token_status(anon: httpx.AsyncClient, client_id: str, secret: str) -> int:
    response = await anon.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    return response.status_code


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def org(client: httpx.AsyncClient) -> str:
    name: str = (await make_org(client))["name"]
    return name


# --- applications -------------------------------------------------------------------


async def test_app_lifecycle_shows_the_client_secret_only_at_creation(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, org: str
) -> None:
    name = unique("app")
    created = await client.post(
        "/v1/apps", json={"org": org, "name": name, "description": "Reads things"}
    )
    assert created.status_code == 201, created.text
    app = created.json()
    assert app["client_id"].startswith("app_")
    assert app["client_secret"]
    assert app["scopes"] == ["changes:read", "datasets:read", "records:read"]
    assert app["disabled"] is False

    fetched = await client.get(f"/v1/apps/{app['id']}")
    assert fetched.status_code == 200
    assert "client_secret" not in fetched.json()
    assert fetched.json()["client_id"] == app["client_id"]

    listed = await client.get("/v1/apps", params={"org": org})
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["data"]] == [app["id"]]
    assert "client_secret" not in listed.json()["data"][0]
    assert app["client_secret"] not in listed.text

    patched = await client.patch(
        f"/v1/apps/{app['id']}", json={"description": "Reads more", "scopes": ["records:read"]}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "Reads more"
    assert patched.json()["scopes"] == ["records:read"]
    assert "client_secret" not in patched.json()

    key = (await make_key(client, app["id"]))["key"]
    assert (await anon.get("/v1/datasets/none-such", headers=bearer(key))).status_code == 404
    assert (await client.delete(f"/v1/apps/{app['id']}")).status_code == 204
    assert (await client.get(f"/v1/apps/{app['id']}")).status_code == 404
    assert await status_with(anon, key) == 401  # its keys die with it, at once
    assert await client_token_status(anon, app["client_id"], app["client_secret"]) == 401


async def test_app_names_are_unique_within_an_org(client: httpx.AsyncClient, org: str) -> None:
    name = unique("app")
    assert (await client.post("/v1/apps", json={"org": org, "name": name})).status_code == 201
    assert (await client.post("/v1/apps", json={"org": org, "name": name})).status_code == 409


# --- API keys -----------------------------------------------------------------------


async def test_key_lifecycle_shows_the_key_once_and_revokes_at_once(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, org: str
) -> None:
    app = await make_app(client, org)
    created = await client.post(f"/v1/apps/{app['id']}/keys", json={"name": "ci"})
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["key"].startswith(key["prefix"])
    assert key["last_used_at"] is None

    assert await status_with(anon, key["key"]) == 200
    listed = await client.get(f"/v1/apps/{app['id']}/keys")
    assert listed.status_code == 200
    [shown] = listed.json()["data"]
    assert "key" not in shown
    assert key["key"] not in listed.text
    assert shown["prefix"] == key["prefix"]
    assert shown["last_used_at"] is not None
    assert shown["revoked_at"] is None

    revoked = await client.delete(f"/v1/apps/{app['id']}/keys/{key['id']}")
    assert revoked.status_code == 204
    refused = await anon.get("/v1/datasets", headers=bearer(key["key"]))
    assert refused.status_code == 401  # the very next request, no cache grace
    assert refused.headers["www-authenticate"].startswith("Bearer")
    [after] = (await client.get(f"/v1/apps/{app['id']}/keys")).json()["data"]
    assert after["revoked_at"] is not None
    missing = await client.delete(f"/v1/apps/{app['id']}/keys/{app['id']}")
    assert missing.status_code == 404


async def test_key_scopes_are_a_subset_of_the_app_scopes(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, org: str
) -> None:
    app = await make_app(client, org, scopes=["datasets:read", "records:read"])
    beyond = await client.post(
        f"/v1/apps/{app['id']}/keys", json={"name": "k", "scopes": ["records:write"]}
    )
    assert beyond.status_code == 422
    assert beyond.headers["content-type"] == "application/problem+json"
    assert beyond.json()["errors"][0]["path"] == "/scopes"
    narrow = await make_key(client, app["id"], scopes=["records:read"])
    assert narrow["scopes"] == ["records:read"]
    assert await status_with(anon, narrow["key"]) == 403  # the catalog needs datasets:read


async def test_key_expiry(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, org: str, db: asyncpg.Connection
) -> None:
    app = await make_app(client, org)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = await client.post(
        f"/v1/apps/{app['id']}/keys", json={"name": "k", "expires_at": past}
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["path"] == "/expires_at"

    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    key = await make_key(client, app["id"], expires_at=future)
    assert key["expires_at"] is not None
    await db.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
        key["id"],
    )
    assert await status_with(anon, key["key"]) == 401


async def test_rotation_keeps_the_old_key_working_until_the_overlap_ends(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, org: str
) -> None:
    app = await make_app(client, org)
    old = await make_key(client, app["id"])
    assert await status_with(anon, old["key"]) == 200
    rotated = await client.post(
        f"/v1/apps/{app['id']}/keys/{old['id']}/rotate", json={"overlap_seconds": 1}
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["key"] != old["key"]
    assert new["replaces"] == old["id"]
    old_until = datetime.fromisoformat(new["old_key_expires_at"])
    assert await status_with(anon, new["key"]) == 200
    assert await status_with(anon, old["key"]) == 200  # still inside the overlap
    while await status_with(anon, old["key"]) == 200:
        # Expiry is not announced, so a replica may serve its cached principal up
        # to one second (the credential cache bound) past the overlap's end.
        assert datetime.now(UTC) < old_until + timedelta(seconds=1.2)
        await asyncio.sleep(0.05)
    assert datetime.now(UTC) >= old_until - timedelta(seconds=0.1)
    assert await status_with(anon, new["key"]) == 200
    keys = {k["id"]: k for k in (await client.get(f"/v1/apps/{app['id']}/keys")).json()["data"]}
    assert set(keys) == {old["id"], new["id"]}


async def test_rotation_without_overlap_stops_the_old_key_at_once(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, org: str
) -> None:
    app = await make_app(client, org)
    old = await make_key(client, app["id"])
    assert await status_with(anon, old["key"]) == 200
    rotated = await client.post(
        f"/v1/apps/{app['id']}/keys/{old['id']}/rotate", json={"overlap_seconds": 0}
    )
    assert rotated.status_code == 201, rotated.text
    assert await status_with(anon, old["key"]) == 401
    assert await status_with(anon, rotated.json()["key"]) == 200


async def test_rotation_overlap_is_bounded_and_revoked_keys_do_not_rotate(
    client: httpx.AsyncClient, org: str, settings: Settings
) -> None:
    app = await make_app(client, org)
    key = await make_key(client, app["id"])
    too_long = settings.key_rotation_max_overlap_seconds + 1
    refused = await client.post(
        f"/v1/apps/{app['id']}/keys/{key['id']}/rotate", json={"overlap_seconds": too_long}
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["path"] == "/overlap_seconds"
    negative = await client.post(
        f"/v1/apps/{app['id']}/keys/{key['id']}/rotate", json={"overlap_seconds": -1}
    )
    assert negative.status_code == 422
    await client.delete(f"/v1/apps/{app['id']}/keys/{key['id']}")
    again = await client.post(f"/v1/apps/{app['id']}/keys/{key['id']}/rotate", json={})
    assert again.status_code == 409


# --- client secrets -----------------------------------------------------------------


async def test_rotating_the_client_secret_stops_the_old_one(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, org: str
) -> None:
    app = await make_app(client, org)
    assert await client_token_status(anon, app["client_id"], app["client_secret"]) == 200
    rotated = await client.post(f"/v1/apps/{app['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["client_id"] == app["client_id"]
    new_secret = rotated.json()["client_secret"]
    assert new_secret != app["client_secret"]
    assert await client_token_status(anon, app["client_id"], app["client_secret"]) == 401
    assert await client_token_status(anon, app["client_id"], new_secret) == 200


# --- tenant isolation ---------------------------------------------------------------


async def test_an_org_admin_app_cannot_reach_another_orgs_apps_or_keys(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org_a, org_b = (await make_org(client))["name"], (await make_org(client))["name"]
    admin_a = await make_app(client, org_a, scopes=["admin", "datasets:read"])
    as_a = bearer((await make_key(client, admin_a["id"]))["key"])
    app_b = await make_app(client, org_b)
    key_b = await make_key(client, app_b["id"])

    # Within its own org the admin app manages apps and keys.
    own = await anon.post("/v1/apps", json={"org": org_a, "name": unique("app")}, headers=as_a)
    assert own.status_code == 201, own.text
    own_key = await anon.post(f"/v1/apps/{own.json()['id']}/keys", json={"name": "k"}, headers=as_a)
    assert own_key.status_code == 201

    b = f"/v1/apps/{app_b['id']}"
    attempts = [
        ("GET", b, None),
        ("PATCH", b, {"disabled": True}),
        ("DELETE", b, None),
        ("POST", f"{b}/rotate-secret", None),
        ("GET", f"{b}/keys", None),
        ("POST", f"{b}/keys", {"name": "mine now"}),
        ("DELETE", f"{b}/keys/{key_b['id']}", None),
        ("POST", f"{b}/keys/{key_b['id']}/rotate", {"overlap_seconds": 0}),
    ]
    for method, path, body in attempts:
        response = await anon.request(method, path, json=body, headers=as_a)
        assert response.status_code == 404, (method, path, response.text)
        assert app_b["client_id"] not in response.text

    listed = await anon.get("/v1/apps", headers=as_a)
    assert listed.status_code == 200
    assert app_b["id"] not in {a["id"] for a in listed.json()["data"]}
    assert (await anon.get("/v1/apps", params={"org": org_b}, headers=as_a)).json()["data"] == []
    into_b = await anon.post("/v1/apps", json={"org": org_b, "name": unique("app")}, headers=as_a)
    assert into_b.status_code in (403, 422)

    # Nothing of org B changed.
    assert await status_with(anon, key_b["key"]) == 200
    assert (await client.get(b)).json()["disabled"] is False
    assert await client_token_status(anon, app_b["client_id"], app_b["client_secret"]) == 200


async def test_an_app_without_admin_scope_sees_only_itself(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, org: str
) -> None:
    me = await make_app(client, org)
    sibling = await make_app(client, org)
    as_me = bearer((await make_key(client, me["id"]))["key"])
    assert (await anon.get(f"/v1/apps/{me['id']}", headers=as_me)).status_code == 200
    assert (await anon.get(f"/v1/apps/{sibling['id']}", headers=as_me)).status_code == 404
    listed = (await anon.get("/v1/apps", headers=as_me)).json()["data"]
    assert [a["id"] for a in listed] == [me["id"]]
    assert (await anon.get(f"/v1/apps/{me['id']}/keys", headers=as_me)).status_code == 403
    patched = await anon.patch(f"/v1/apps/{me['id']}", json={"disabled": True}, headers=as_me)
    assert patched.status_code == 403


async def test_refusals_take_effect_before_the_next_request(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, org: str
) -> None:
    """Disabling an app refuses every key of it on the very next request."""
    app = await make_app(client, org)
    keys = [(await make_key(client, app["id"]))["key"] for _ in range(3)]
    for key in keys:
        assert await status_with(anon, key) == 200
    started = time.monotonic()
    assert (await client.patch(f"/v1/apps/{app['id']}", json={"disabled": True})).status_code == 200
    assert [await status_with(anon, key) for key in keys] == [401, 401, 401]
    assert time.monotonic() - started < 1.0
