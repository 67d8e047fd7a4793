"""Plain functions that make test data through the public API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

PRODUCT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sku": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "price": {"type": "number", "minimum": 0},
        "stock": {"type": "integer"},
        "region": {"type": "string"},
        "active": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["sku", "name", "price"],
    "additionalProperties": False,
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def make_org(client: httpx.AsyncClient, name: str | None = None) -> dict[str, Any]:
    response = await client.post("/v1/orgs", json={"name": name or unique("org"), "title": "Org"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_dataset(
    client: httpx.AsyncClient, org: str | None = None, **overrides: Any
) -> dict[str, Any]:
    if org is None:
        org = (await make_org(client))["name"]
    payload: dict[str, Any] = {
        "name": unique("ds"),
        "org": org,
        "title": "Products",
        "description": "Things for sale",
        "schema": PRODUCT_SCHEMA,
        "visibility": "public",
    }
    payload.update(overrides)
    response = await client.post("/v1/datasets", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_app(
    client: httpx.AsyncClient, org: str, scopes: list[str] | None = None, **overrides: Any
) -> dict[str, Any]:
    """Register an application of ``org`` (the response includes its client secret)."""
    payload: dict[str, Any] = {"org": org, "name": unique("app")}
    if scopes is not None:
        payload["scopes"] = scopes
    payload.update(overrides)
    response = await client.post("/v1/apps", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_key(
    client: httpx.AsyncClient, app_id: str, scopes: list[str] | None = None, **overrides: Any
) -> dict[str, Any]:
    """Issue an API key for an app (the response includes the secret ``key``)."""
    payload: dict[str, Any] = {"name": unique("key")}
    if scopes is not None:
        payload["scopes"] = scopes
    payload.update(overrides)
    response = await client.post(f"/v1/apps/{app_id}/keys", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def app_key(client: httpx.AsyncClient, org: str, scopes: list[str]) -> str:
    """A bearer API key of a fresh app of ``org`` holding exactly ``scopes``."""
    app = await make_app(client, org, scopes=scopes)
    key: str = (await make_key(client, app["id"]))["key"]
    return key


async def make_plan(client: httpx.AsyncClient, **limits: Any) -> str:
    """A plan of the test's own (``rate_per_second`` and ``burst`` at least)."""
    name = unique("plan")
    response = await client.post("/v1/plans", json={"name": name, **limits})
    assert response.status_code == 201, response.text
    return name


async def app_on_plan(client: httpx.AsyncClient, plan: str) -> tuple[str, str]:
    """A fresh app of a fresh org moved to ``plan``: its id and an API key."""
    org = (await make_org(client))["name"]
    app = await make_app(client, org, scopes=["datasets:read", "records:read", "records:write"])
    moved = await client.patch(f"/v1/apps/{app['id']}", json={"plan": plan})
    assert moved.status_code == 200, moved.text
    key: str = (await make_key(client, app["id"]))["key"]
    return app["id"], key


async def granted(
    client: httpx.AsyncClient,
    ds: str,
    app_id: str,
    app_key: str,
    owner_key: str,
    scopes: list[str] | None = None,
    **approval: Any,
) -> dict[str, Any]:
    """The app asks for ``ds`` with its key; the owning org's admin key approves it
    (``approval``: ``fields``, ``row_filter``... narrow it). The approved request."""
    asked = await client.post(
        f"/v1/datasets/{ds}/access-requests",
        json={"app": app_id, "scopes": scopes or ["datasets:read", "records:read"], "reason": "r"},
        headers={"Authorization": f"Bearer {app_key}"},
    )
    assert asked.status_code == 201, asked.text
    approved = await client.post(
        f"/v1/access-requests/{asked.json()['id']}/approve",
        json=approval,
        headers={"Authorization": f"Bearer {owner_key}"},
    )
    assert approved.status_code == 200, approved.text
    body: dict[str, Any] = approved.json()
    return body


async def make_user(client: httpx.AsyncClient, password: str, **overrides: Any) -> dict[str, Any]:
    """A user account (``client`` is the platform administrator's)."""
    payload: dict[str, Any] = {"email": f"{unique('user')}@example.test", "password": password}
    payload.update(overrides)
    response = await client.post("/v1/users", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def sign_in(anon: httpx.AsyncClient, email: str, password: str) -> str:
    """A user's bearer access token, from the password sign-in (``POST /v1/auth/token``)."""
    response = await anon.post("/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def client_credentials_token(anon: httpx.AsyncClient, app: dict[str, Any]) -> str:
    """An app's OAuth 2.0 access token (client credentials, every scope the app holds)."""
    response = await anon.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
