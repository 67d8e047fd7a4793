"""``GET /v1/me``: every kind of credential can ask who it is."""

from __future__ import annotations

import httpx

from tests.factories import (
    app_key,
    client_credentials_token,
    granted,
    make_app,
    make_dataset,
    make_key,
    make_org,
    make_user,
    sign_in,
)

PASSWORD = "correct horse battery staple"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_admin_key_is_the_admin_with_every_scope(client: httpx.AsyncClient) -> None:
    me = await client.get("/v1/me")
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["kind"] == "admin"
    assert body["credential"]["kind"] == "api_key"
    assert "admin" in body["scopes"]
    assert body["scopes"] == sorted(body["scopes"])
    assert (body["app"], body["user"], body["grants"]) == (None, None, [])


async def test_an_apps_key_shows_its_app_its_scopes_and_its_grants_as_narrowed(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    owner = (await make_org(client))["name"]
    ds = (await make_dataset(client, owner, visibility="restricted", primary_key="sku"))["name"]
    owner_key = await app_key(client, owner, ["admin"])
    org = (await make_org(client))["name"]
    app = await make_app(client, org, scopes=["datasets:read", "records:read"])
    key = await make_key(client, app["id"], scopes=["records:read", "datasets:read"])
    await granted(
        client,
        ds,
        app["id"],
        key["key"],
        owner_key,
        fields=["sku", "name"],
        row_filter={"name": "Widget"},
    )

    me = await anon.get("/v1/me", headers=bearer(key["key"]))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["kind"] == "app"
    assert body["credential"] == {"kind": "api_key", "id": key["id"]}
    assert body["scopes"] == ["datasets:read", "records:read"]
    assert body["app"] == {"id": app["id"], "name": app["name"], "org": org}
    assert body["user"] is None
    [grant] = body["grants"]
    assert (grant["dataset"], grant["fields"]) == (ds, ["sku", "name"])
    assert grant["row_filter"] == {"name": "Widget"}
    assert set(grant) == {"id", "dataset", "scopes", "fields", "row_filter", "expires_at"}


async def test_an_apps_oauth_token_is_the_same_app_through_another_credential(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    app = await make_app(client, org, scopes=["datasets:read"])
    token = await client_credentials_token(anon, app)
    body = (await anon.get("/v1/me", headers=bearer(token))).json()
    assert (body["kind"], body["credential"]["kind"]) == ("app", "access_token")
    assert body["app"]["id"] == app["id"]


async def test_a_users_token_shows_the_person_and_their_memberships(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    user = await make_user(client, PASSWORD)
    added = await client.post(
        f"/v1/orgs/{org}/members", json={"email": user["email"], "role": "member"}
    )
    assert added.status_code in (200, 201), added.text
    token = await sign_in(anon, user["email"], PASSWORD)

    body = (await anon.get("/v1/me", headers=bearer(token))).json()
    assert (body["kind"], body["credential"]["kind"]) == ("user", "access_token")
    assert body["user"]["email"] == user["email"]
    assert {"org": org, "role": "member"} in body["user"]["memberships"]
    assert (body["app"], body["grants"]) == (None, [])


async def test_without_a_credential_it_is_401(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/v1/me")).status_code == 401
