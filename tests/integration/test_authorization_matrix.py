"""The authorisation matrix (issue 3, acceptance item 1): every endpoint against
every kind of caller, each cell asserting the exact status.

Columns (who calls):

- ``no_credential``, ``bad_credential`` (a well-formed key nobody issued),
  ``expired_credential`` and ``revoked_credential`` (keys of the right-grant
  app, expired through SQL and revoked through the API): always 401 with a
  ``WWW-Authenticate: Bearer`` challenge, but for the dataset list, which shows
  a caller with no credential the open datasets (none of P's).
- ``wrong_org``: an app of a third organisation W holding every scope, ``admin``
  included (so W's administrator), with no grant: it must neither see nor touch
  anything of P or C.
- ``missing_scope``: the key of the row's natural actor (``Row.actor``) issued
  without the scope the endpoint needs (``Row.needs``); rows that need no
  scope use a key holding only ``webhooks:manage``, which only the webhook
  rows use (and they need it, so they never get that key).
- ``grant_without_field``: an app of the consumer C whose read-only grant on
  the restricted dataset D hides its ``secret`` field.
- ``right_grant``: an app of C holding every read and write scope (not
  ``admin``) with a live read-write grant on D.
- ``right_grant_oauth``: the same app with an OAuth 2.0 access token (client
  credentials) instead of an API key.
- ``member_user``: a user holding the ``member`` role in P, with the access token
  its password sign-in (``POST /v1/auth/token``) gave it: it reads and writes
  P's datasets, D included, and manages nothing.
- ``admin``: the platform administrator.

Every row states the status for each column: the API-key columns in order, then
``oauth=`` and ``user=``.

The world is built once per module: the provider P owns the restricted
dataset D and a public dataset; C runs the grantee apps; W runs the outsider.
Cells that change something work on their own throwaway object (a fresh
record, app, key, member, dataset, request or grant), so no cell depends on
another and the shared objects stay as they are.

Beyond the status, no column but those in ``SEES_SECRET`` (the right-grant app,
either credential, P's member and the platform administrator) ever receives D's
hidden value, and list rows (``Row.check``) assert that each tenant's lists hold
only its own orgs, apps, grants, requests, datasets and audit rows.

The record and bulk routes are served by direct routes placed before FastAPI's
router; their rows (``DIRECT_OPERATIONS``) also run against a second app built
without them (``routed_only``), expecting the same status in every column.

Every denial (401, 403, and a 404 or 422 hiding what the caller may not see)
must leave exactly one ``denied`` audit row carrying the request's
X-Request-ID; every other answer must leave none.

A new endpoint without a row here fails ``test_every_endpoint_has_a_row``.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import FastAPI

from entrepot.app import create_app
from entrepot.direct_routes import DirectRoute
from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.factories import (
    client_credentials_token,
    make_app,
    make_dataset,
    make_key,
    make_org,
    sign_in,
    unique,
)
from tests.integration.edge_helpers import routed_only

CREDENTIAL_COLUMNS = (
    "no_credential",
    "bad_credential",
    "expired_credential",
    "revoked_credential",
)
PRINCIPAL_COLUMNS = (
    "wrong_org",
    "missing_scope",
    "grant_without_field",
    "right_grant",
    "right_grant_oauth",
    "member_user",
    "admin",
)
# The columns that read D in full, hidden field included.
SEES_SECRET = frozenset({"right_grant", "right_grant_oauth", "member_user", "admin"})
COLUMNS = CREDENTIAL_COLUMNS + PRINCIPAL_COLUMNS

READ = ["changes:read", "datasets:read", "records:read"]
READ_WRITE = [*READ, "records:write"]
APP_SCOPES = [*READ_WRITE, "webhooks:manage"]  # every read and write scope, not admin
ADMIN_SCOPES = [*APP_SCOPES, "admin"]
UNUSED_SCOPE = "webhooks:manage"  # a missing-scope key when a row needs none (not a webhook row)

SECRET = "hush-" + uuid.uuid4().hex  # D's hidden value: only right_grant and admin see it
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sku": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "price": {"type": "number", "minimum": 0},
        "secret": {"type": "string"},
    },
    "required": ["sku", "name", "price"],
    "additionalProperties": False,
}
VISIBLE_FIELDS = ["sku", "name", "price"]
PASSWORD = "correct horse battery staple"
# Webhook URLs must pass the SSRF guard, which refuses documentation ranges
# (TEST-NET) too, so this is a public address; nothing ever posts to it: no
# cell writes the dataset the matrix's webhooks follow, and the one delivery a
# cell queues (retry) goes to a webhook first re-pointed at DEAD_URL in SQL.
HOOK_URL = "https://93.184.215.14/entrepot-matrix-hook"
DEAD_URL = "http://127.0.0.1:9/never"  # loopback: the worker refuses it without connecting

# Endpoints that take no bearer credential, and why; each has its own test below.
UNAUTHENTICATED: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "liveness probe: load balancers call it without credentials",
    ("GET", "/readyz"): "readiness probe: load balancers call it without credentials",
    ("GET", "/.well-known/jwks.json"): "public keys: anyone verifies tokens with them",
    ("GET", "/.well-known/oauth-authorization-server"): "RFC 8414 discovery is public",
    ("POST", "/oauth/token"): "its own client authentication (RFC 6749 2.3: Basic or form)",
    ("POST", "/v1/auth/token"): "password login: the credential is the body",
    ("GET", "/"): "the landing page for browsers (API clients get the 404 as before)",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def record(sku: str) -> dict[str, Any]:
    return {"sku": sku, "name": f"Thing {sku}", "price": 10, "secret": SECRET}


# --- the world ------------------------------------------------------------------------


@dataclass
class World:
    client: httpx.AsyncClient  # the platform administrator
    provider: str  # P: owns D and the public dataset
    consumer: str  # C: runs the grantee apps
    consumer_id: str
    outsider: str  # W: no grant on anything of P's
    apps: dict[str, dict[str, Any]]  # p_admin, c_admin, right, narrowed, outsider
    tokens: dict[str, str | None] = field(default_factory=dict)  # column -> bearer
    ds: str = ""  # D: restricted, primary key sku, a "secret" field
    public_ds: str = ""
    record_id: str = "r-shared"  # a record of D (and of the public dataset) no cell changes
    grant_id: str = ""  # right_grant's live read-write grant on D
    request_id: str = ""  # right_grant's pending request for another dataset of P
    user_id: str = ""  # a user whom PATCH /v1/users/{user_id} leaves enabled
    user_email: str = ""
    hook_ds: str = ""  # a restricted dataset of P the right-grant app follows; no cell writes it
    webhook_id: str = ""  # a webhook of the right-grant app on hook_ds that no cell changes
    db: asyncpg.Connection | None = None
    _keys: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)

    def app_id(self, name: str) -> str:
        return str(self.apps[name]["id"])

    def own_app(self, column: str) -> str:
        """The app a column's caller acts for (the right-grant app for the rest)."""
        return self.app_id(
            {"wrong_org": "outsider", "grant_without_field": "narrowed"}.get(column, "right")
        )

    def own_apps(self, column: str) -> set[str]:
        """The apps a tenant column's caller acts for: none for the signed-in user."""
        return set() if column == "member_user" else {self.own_app(column)}

    async def key(self, actor: str, scopes: list[str]) -> str:
        """A key of ``actor``'s app holding ``scopes`` (one per actor and scopes)."""
        wanted = tuple(sorted(scopes))
        if (actor, wanted) not in self._keys:
            key = await make_key(self.client, self.app_id(actor), scopes=list(wanted))
            self._keys[actor, wanted] = str(key["key"])
        return self._keys[actor, wanted]

    async def as_app(self, actor: str) -> str:
        """A key of ``actor``'s app holding all of the app's scopes."""
        return await self.key(actor, self.apps[actor]["scopes"])

    async def key_without(self, actor: str, scope: str | None) -> str:
        """A key of ``actor``'s app without ``scope`` (holding only UNUSED_SCOPE if None)."""
        app_scopes: list[str] = self.apps[actor]["scopes"]
        return await self.key(
            actor, [s for s in app_scopes if s != scope] if scope else [UNUSED_SCOPE]
        )

    # Throwaway objects ---------------------------------------------------------------

    async def new_restricted(self, grant_to: str | None = None) -> str:
        """A fresh restricted dataset of P, granted to ``grant_to``'s app like D is."""
        name = str(
            (
                await make_dataset(
                    self.client,
                    self.provider,
                    schema=SCHEMA,
                    primary_key="sku",
                    visibility="restricted",
                )
            )["name"]
        )
        if grant_to in ("right_grant", "right_grant_oauth"):  # one app, two credentials
            await self.grant(name, "right", READ_WRITE)
        elif grant_to == "grant_without_field":
            await self.grant(name, "narrowed", READ, fields=VISIBLE_FIELDS)
        return name

    async def ask(self, ds: str, app: str, scopes: list[str]) -> str:
        response = await self.client.post(
            f"/v1/datasets/{ds}/access-requests",
            json={"app": self.app_id(app), "scopes": scopes, "reason": "the matrix"},
            headers=bearer(await self.as_app(app)),
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def grant(self, ds: str, app: str, scopes: list[str], **narrowing: Any) -> str:
        request_id = await self.ask(ds, app, scopes)
        approved = await self.client.post(
            f"/v1/access-requests/{request_id}/approve",
            json=narrowing,
            headers=bearer(await self.as_app("p_admin")),
        )
        assert approved.status_code == 200, approved.text
        return str(approved.json()["grant_id"])

    async def pending_request(self) -> str:
        return await self.ask(await self.new_restricted(), "right", READ)

    async def victim_grant(self) -> str:
        return await self.grant(await self.new_restricted(), "right", READ)

    async def victim_record(self) -> str:
        sku = unique("victim")
        response = await self.client.post(f"/v1/datasets/{self.ds}/records", json=record(sku))
        assert response.status_code == 201, response.text
        return sku

    async def victim_app(self) -> str:
        return str((await make_app(self.client, self.consumer, scopes=APP_SCOPES))["id"])

    async def victim_key(self) -> str:
        return str((await make_key(self.client, self.app_id("right")))["id"])

    async def new_user(self) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/users", json={"email": f"{unique('user')}@example.test", "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def new_webhook(self) -> str:
        """A webhook of the right-grant app following hook_ds (which never changes)."""
        response = await self.client.post(
            f"/v1/apps/{self.app_id('right')}/webhooks",
            json={"url": HOOK_URL, "datasets": [self.hook_ds]},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def victim_delivery(self) -> tuple[str, str]:
        """A fresh webhook with one failed delivery: (webhook id, delivery id).

        Retrying it queues a real attempt, so the webhook's URL is first pointed
        at loopback, which the worker refuses without opening a connection.
        """
        assert self.db is not None
        webhook_id = uuid.UUID(await self.new_webhook())
        await self.db.execute("UPDATE webhooks SET url = $2 WHERE id = $1", webhook_id, DEAD_URL)
        dataset_id = await self.db.fetchval(
            "SELECT dataset_id FROM webhook_datasets WHERE webhook_id = $1", webhook_id
        )
        payload = orjson.dumps({"type": "record.created", "data": {"sku": "gone"}}).decode()
        delivery_id = await self.db.fetchval(
            """
            INSERT INTO webhook_deliveries (webhook_id, dataset_id, seq, record_id, event,
                                            message_id, payload, status, attempts)
            VALUES ($1, $2, 1, 'gone', 'record.created', $3, $4, 'failed', 8)
            RETURNING id
            """,
            webhook_id,
            dataset_id,
            f"msg_{uuid.uuid4().hex}",
            payload,
        )
        return str(webhook_id), str(delivery_id)

    async def victim_member(self) -> str:
        user = await self.new_user()
        added = await self.client.post(
            f"/v1/orgs/{self.consumer}/members", json={"email": user["email"], "role": "member"}
        )
        assert added.status_code == 201, added.text
        return str(user["id"])


@pytest.fixture(scope="module")
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
async def world(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, db: asyncpg.Connection
) -> World:
    provider = (await make_org(client))["name"]
    consumer_org = await make_org(client)
    consumer = consumer_org["name"]
    outsider = (await make_org(client))["name"]
    apps = {
        "p_admin": await make_app(client, provider, scopes=ADMIN_SCOPES),
        "c_admin": await make_app(client, consumer, scopes=ADMIN_SCOPES),
        "right": await make_app(client, consumer, scopes=APP_SCOPES),
        "narrowed": await make_app(client, consumer, scopes=APP_SCOPES),
        "outsider": await make_app(client, outsider, scopes=ADMIN_SCOPES),
    }
    w = World(client, provider, consumer, consumer_org["id"], outsider, apps)
    user = await w.new_user()
    w.user_id, w.user_email = user["id"], user["email"]
    w.ds = str(
        (
            await make_dataset(
                client, provider, schema=SCHEMA, primary_key="sku", visibility="restricted"
            )
        )["name"]
    )
    w.public_ds = str(
        (await make_dataset(client, provider, schema=SCHEMA, primary_key="sku"))["name"]
    )
    for ds in (w.ds, w.public_ds):
        created = await client.post(f"/v1/datasets/{ds}/records", json=record(w.record_id))
        assert created.status_code == 201, created.text
    w.grant_id = await w.grant(w.ds, "right", READ_WRITE)
    await w.grant(w.ds, "narrowed", READ, fields=VISIBLE_FIELDS)
    w.request_id = await w.pending_request()
    w.db = db
    w.hook_ds = await w.new_restricted(grant_to="right_grant")  # changes:read included
    w.webhook_id = await w.new_webhook()

    expired = await make_key(client, w.app_id("right"))
    await db.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 hour' WHERE id = $1",
        uuid.UUID(expired["id"]),
    )
    revoked = await make_key(client, w.app_id("right"))
    gone = await client.delete(f"/v1/apps/{w.app_id('right')}/keys/{revoked['id']}")
    assert gone.status_code == 204, gone.text

    # A user holding the member role in P, signed in with a password like a person.
    member = await w.new_user()
    joined = await client.post(
        f"/v1/orgs/{provider}/members", json={"email": member["email"], "role": "member"}
    )
    assert joined.status_code == 201, joined.text

    w.tokens = {
        "no_credential": None,
        "bad_credential": "ent_" + secrets.token_urlsafe(32),
        "expired_credential": expired["key"],
        "revoked_credential": revoked["key"],
        "wrong_org": await w.as_app("outsider"),
        "grant_without_field": await w.as_app("narrowed"),
        "right_grant": await w.as_app("right"),
        "right_grant_oauth": await client_credentials_token(anon, apps["right"]),
        "member_user": await sign_in(anon, member["email"], PASSWORD),
        "admin": ADMIN_TOKEN,
    }
    return w


# --- the table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    path: str
    params: dict[str, str] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


Make = Callable[[World, str], Awaitable[Call]]
Check = Callable[[World, str, httpx.Response], None]


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the OpenAPI path template
    make: Make  # the concrete request for one column
    expect: dict[str, int]  # the principal columns; the credential columns are all 401
    needs: str | None  # the scope the missing_scope column's key lacks
    actor: str = "right"  # whose key, without ``needs``, the missing_scope column uses
    hidden_422: frozenset[str] = frozenset()  # columns whose 422 hides another tenant's object
    not_denied: frozenset[str] = frozenset()  # columns whose 404 is no access decision
    check: Check | None = None  # what a 2xx answer may contain, for each column
    # no_credential's status where it is not 401: the routes that read datasets let an
    # anonymous caller read open ones (tests/integration/test_open_data.py)
    anonymous: int = 401

    @property
    def operation(self) -> tuple[str, str]:
        return self.method, self.path

    def status(self, column: str) -> int:
        if column == "no_credential":
            return self.anonymous
        return 401 if column in CREDENTIAL_COLUMNS else self.expect[column]

    def denial(self, column: str) -> bool:
        status = self.status(column)
        if status in (401, 403):
            return True
        if status == 404:
            return column not in self.not_denied
        return status == 422 and column in self.hidden_422


def expect(
    wrong_org: int,
    missing_scope: int,
    grant_without_field: int,
    right_grant: int,
    admin: int,
    *,
    oauth: int,
    user: int,
) -> dict[str, int]:
    """The five API-key columns in order, then ``oauth`` (the right-grant app's OAuth
    access token) and ``user`` (the signed-in member of P)."""
    return {
        "wrong_org": wrong_org,
        "missing_scope": missing_scope,
        "grant_without_field": grant_without_field,
        "right_grant": right_grant,
        "right_grant_oauth": oauth,
        "member_user": user,
        "admin": admin,
    }


def fixed(path: Callable[[World], str], **kw: Any) -> Make:
    """The same request for every column; a keyword may be a function of the world."""

    async def make(w: World, column: str) -> Call:
        return Call(path(w), **{k: v(w) if callable(v) else v for k, v in kw.items()})

    return make


# Bodies are valid, so the answer is the authorisation decision, never a 422 masking it.


async def new_org(w: World, column: str) -> Call:
    return Call("/v1/orgs", json={"name": unique("org"), "title": "Matrix"})


async def new_dataset(w: World, column: str) -> Call:
    body = {
        "name": unique("ds"),
        "org": w.consumer,
        "title": "Matrix",
        "schema": SCHEMA,
        "visibility": "restricted",
    }
    return Call("/v1/datasets", json=body)


async def doomed_dataset(w: World, column: str) -> Call:
    return Call(f"/v1/datasets/{await w.new_restricted(grant_to=column)}")


async def new_app(w: World, column: str) -> Call:
    return Call("/v1/apps", json={"org": w.consumer, "name": unique("app")})


async def doomed_app(w: World, column: str) -> Call:
    return Call(f"/v1/apps/{await w.victim_app()}")


async def doomed_key(w: World, column: str) -> Call:
    return Call(f"/v1/apps/{w.app_id('right')}/keys/{await w.victim_key()}")


async def rotated_key(w: World, column: str) -> Call:
    path = f"/v1/apps/{w.app_id('right')}/keys/{await w.victim_key()}/rotate"
    return Call(path, json={"overlap_seconds": 0})


async def new_user(w: World, column: str) -> Call:
    return Call("/v1/users", json={"email": f"{unique('user')}@example.test", "password": PASSWORD})


async def new_member(w: World, column: str) -> Call:
    email = w.user_email if column in CREDENTIAL_COLUMNS else (await w.new_user())["email"]
    return Call(f"/v1/orgs/{w.consumer}/members", json={"email": email, "role": "member"})


async def doomed_member(w: World, column: str) -> Call:
    user_id = w.user_id if column in CREDENTIAL_COLUMNS else await w.victim_member()
    return Call(f"/v1/orgs/{w.consumer}/members/{user_id}")


async def new_request(w: World, column: str) -> Call:
    # The outsider and P's member ask on behalf of C's app: acting for another tenant's app.
    app = w.app_id("right") if column in ("wrong_org", "member_user") else w.own_app(column)
    body = {"app": app, "scopes": READ, "reason": "the matrix"}
    return Call(f"/v1/datasets/{await w.new_restricted()}/access-requests", json=body)


async def approved_request(w: World, column: str) -> Call:
    return Call(f"/v1/access-requests/{await w.pending_request()}/approve", json={"note": "yes"})


async def rejected_request(w: World, column: str) -> Call:
    return Call(f"/v1/access-requests/{await w.pending_request()}/reject", json={"note": "no"})


async def doomed_grant(w: World, column: str) -> Call:
    return Call(f"/v1/grants/{await w.victim_grant()}")


async def new_record(w: World, column: str) -> Call:
    return Call(f"/v1/datasets/{w.ds}/records", json=record(unique("new")))


async def put_record(w: World, column: str) -> Call:
    sku = unique("put")
    return Call(f"/v1/datasets/{w.ds}/records/{sku}", json=record(sku))


async def patched_record(w: World, column: str) -> Call:
    return Call(f"/v1/datasets/{w.ds}/records/{await w.victim_record()}", json={"name": "Patched"})


async def doomed_record(w: World, column: str) -> Call:
    return Call(f"/v1/datasets/{w.ds}/records/{await w.victim_record()}")


async def imported(w: World, column: str) -> Call:
    return Call(
        f"/v1/datasets/{w.ds}/import",
        content=orjson.dumps(record(unique("imp"))) + b"\n",
        headers={"Content-Type": "application/x-ndjson"},
    )


async def new_webhook(w: World, column: str) -> Call:
    body = {"url": HOOK_URL, "datasets": [w.hook_ds], "events": ["record.created"]}
    return Call(f"{r_app(w)}/webhooks", json=body)


async def victim_webhook(w: World, column: str) -> str:
    """A webhook of its own for a cell that changes one (a 401 touches nothing)."""
    return w.webhook_id if column in CREDENTIAL_COLUMNS else await w.new_webhook()


async def patched_webhook(w: World, column: str) -> Call:
    return Call(
        f"/v1/webhooks/{await victim_webhook(w, column)}", json={"events": ["record.deleted"]}
    )


async def doomed_webhook(w: World, column: str) -> Call:
    return Call(f"/v1/webhooks/{await victim_webhook(w, column)}")


async def rotated_webhook(w: World, column: str) -> Call:
    path = f"/v1/webhooks/{await victim_webhook(w, column)}/rotate-secret"
    return Call(path, json={"overlap_seconds": 0})


async def retried_delivery(w: World, column: str) -> Call:
    if column in CREDENTIAL_COLUMNS:
        webhook, delivery = w.webhook_id, str(uuid.uuid4())
    else:
        webhook, delivery = await w.victim_delivery()
    return Call(f"/v1/webhooks/{webhook}/deliveries/{delivery}/retry")


async def new_plan(w: World, column: str) -> Call:
    return Call("/v1/plans", json={"name": unique("plan"), "rate_per_second": 5, "burst": 10})


async def victim_plan(w: World) -> str:
    name = unique("plan")
    created = await w.client.post(
        "/v1/plans", json={"name": name, "rate_per_second": 5, "burst": 10}
    )
    assert created.status_code == 201, created.text
    return name


async def patched_plan(w: World, column: str) -> Call:
    return Call(f"/v1/plans/{await victim_plan(w)}", json={"burst": 20})


async def doomed_plan(w: World, column: str) -> Call:
    return Call(f"/v1/plans/{await victim_plan(w)}")


def r_app(w: World) -> str:
    return f"/v1/apps/{w.app_id('right')}"


# What a list shows each column: tenants see only their own. The platform
# administrator's lists span every test's data, so they are not checked.


def data(response: httpx.Response) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = response.json()["data"]
    return items


def own_orgs(w: World, column: str, response: httpx.Response) -> None:
    names = {o["name"] for o in data(response)}
    own = {"wrong_org": w.outsider, "member_user": w.provider}.get(column, w.consumer)
    if column != "admin":
        assert names == {own}, names


def own_apps(w: World, column: str, response: httpx.Response) -> None:
    ids = {a["id"] for a in data(response)}
    if column != "admin":  # an app without the admin scope sees only itself
        assert ids == w.own_apps(column), ids


def own_app_items(w: World, column: str, response: httpx.Response) -> None:
    """Grants or access requests: those of the caller's own app only."""
    apps = {item["app"] for item in data(response)}
    if column != "admin":
        assert apps <= w.own_apps(column), apps
    if column in ("missing_scope", "right_grant", "right_grant_oauth"):
        assert w.grant_id in {g["id"] for g in data(response)} or w.request_id in {
            r["id"] for r in data(response)
        }


def visible_datasets(w: World, column: str, response: httpx.Response) -> None:
    listed = {d["name"]: d for d in data(response)}
    if column == "no_credential":  # P has no open dataset
        assert listed == {}, listed
        return
    assert w.public_ds in listed
    assert (w.ds in listed) is (column != "wrong_org"), column
    if column == "wrong_org":
        assert all(d["visibility"] == "public" for d in listed.values())
    if column == "grant_without_field":
        assert "secret" not in orjson.dumps(listed[w.ds]).decode()


def own_audit_rows(w: World, column: str, response: httpx.Response) -> None:
    if response.headers["content-type"].startswith("application/x-ndjson"):
        rows = [orjson.loads(line) for line in response.text.split("\n") if line]
    else:
        rows = data(response)
    assert rows
    assert {row["org_id"] for row in rows} == {w.consumer_id}


def own_webhooks(w: World, column: str, response: httpx.Response) -> None:
    items = data(response)
    assert {h["app"] for h in items} == {w.app_id("right")}, items
    assert w.webhook_id in {h["id"] for h in items}


def created_webhook(w: World, column: str, response: httpx.Response) -> None:
    body = response.json()
    assert body["app"] == w.app_id("right"), body
    assert body["datasets"] == [w.hook_ds], body
    assert body["secret"].startswith("whsec_")


def narrowed_changes(w: World, column: str, response: httpx.Response) -> None:
    """The feed is not vacuously empty: the shared record's creation is in it."""
    assert w.record_id in response.text, response.text[:400]
    assert (SECRET in response.text) is (column in SEES_SECRET), column


def stream_ticket(w: World, column: str, response: httpx.Response) -> None:
    """A ticket for D's feed only, carrying nothing of D's data."""
    body = response.json()
    payload = body["ticket"].split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert (claims["ds"], claims["scope"]) == (w.ds, "changes:read"), claims
    assert body["url"].endswith(f"/v1/datasets/{w.ds}/changes?ticket={body['ticket']}")
    assert SECRET not in response.text


ALL_200 = expect(200, 200, 200, 200, 200, oauth=200, user=200)
PLATFORM_ADMIN_ONLY = expect(403, 403, 403, 403, 200, oauth=403, user=403)
PLATFORM_ADMIN_ONLY_CREATE = expect(403, 403, 403, 403, 201, oauth=403, user=403)
# An app sees itself; managing it needs admin; P's member sees no app of C.
OWN_APP_ONLY = expect(404, 404, 404, 403, 200, oauth=403, user=404)


def own_webhook_only(ok: int) -> dict[str, int]:
    """The app itself with webhooks:manage, its org's admins and the platform admin; the
    app without the scope is refused (403), everyone else sees no such app or webhook."""
    return expect(404, 403, 404, ok, ok, oauth=ok, user=404)


ROWS: list[Row] = [
    # Organisations (C is the target).
    Row(
        "POST",
        "/v1/orgs",
        new_org,
        expect(403, 403, 403, 403, 201, oauth=403, user=403),
        "admin",
        "p_admin",
    ),
    Row("GET", "/v1/orgs", fixed(lambda w: "/v1/orgs"), ALL_200, None, check=own_orgs),
    Row(
        "GET",
        "/v1/orgs/{org}",
        fixed(lambda w: f"/v1/orgs/{w.consumer}"),
        expect(404, 200, 200, 200, 200, oauth=200, user=404),
        None,
    ),
    Row(
        "POST",
        "/v1/orgs/{org}/members",
        new_member,
        expect(404, 403, 403, 403, 201, oauth=403, user=404),
        "admin",
        "c_admin",
    ),
    Row(
        "GET",
        "/v1/orgs/{org}/members",
        fixed(lambda w: f"/v1/orgs/{w.consumer}/members"),
        expect(404, 403, 403, 403, 200, oauth=403, user=404),
        "admin",
        "c_admin",
    ),
    Row(
        "DELETE",
        "/v1/orgs/{org}/members/{user_id}",
        doomed_member,
        expect(404, 403, 403, 403, 204, oauth=403, user=404),
        "admin",
        "c_admin",
    ),
    # The catalog (D is the target; new datasets go to C).
    Row(
        "POST",
        "/v1/datasets",
        new_dataset,
        expect(422, 403, 403, 403, 201, oauth=403, user=422),
        "admin",
        "c_admin",
        hidden_422=frozenset({"wrong_org", "member_user"}),
    ),
    Row(
        "GET",
        "/v1/datasets",
        fixed(lambda w: "/v1/datasets", params=lambda w: {"org": w.provider, "limit": "1000"}),
        expect(200, 403, 200, 200, 200, oauth=200, user=200),
        "datasets:read",
        check=visible_datasets,
        anonymous=200,
    ),
    Row(
        "GET",
        "/v1/datasets/{ds}",
        fixed(lambda w: f"/v1/datasets/{w.ds}"),
        expect(404, 403, 200, 200, 200, oauth=200, user=200),
        "datasets:read",
    ),
    Row(
        "PATCH",
        "/v1/datasets/{ds}",
        fixed(lambda w: f"/v1/datasets/{w.ds}", json={"description": "Touched by the matrix"}),
        expect(404, 403, 403, 403, 200, oauth=403, user=403),
        "admin",
        "p_admin",
    ),
    Row(
        "GET",
        "/v1/datasets/{ds}/usage",
        fixed(lambda w: f"/v1/datasets/{w.ds}/usage"),
        # Which apps use a dataset is its provider's to read, not its grantees'.
        expect(404, 403, 403, 403, 200, oauth=403, user=403),
        "admin",
        "p_admin",
    ),
    Row(
        "DELETE",
        "/v1/datasets/{ds}",
        doomed_dataset,
        expect(404, 403, 403, 403, 204, oauth=403, user=403),
        "admin",
        "p_admin",
    ),
    # Applications and keys (the right-grant app, or a throwaway app of C, is the target).
    Row(
        "POST",
        "/v1/apps",
        new_app,
        expect(422, 403, 403, 403, 201, oauth=403, user=422),
        "admin",
        "c_admin",
        hidden_422=frozenset({"wrong_org", "member_user"}),
    ),
    Row("GET", "/v1/apps", fixed(lambda w: "/v1/apps"), ALL_200, None, check=own_apps),
    Row(
        "GET",
        "/v1/apps/{app}",
        fixed(r_app),
        expect(404, 404, 404, 200, 200, oauth=200, user=404),
        "admin",
        "c_admin",
    ),
    Row(
        "PATCH",
        "/v1/apps/{app}",
        fixed(r_app, json={"description": "Touched by the matrix"}),
        OWN_APP_ONLY,
        "admin",
        "c_admin",
    ),
    Row(
        "DELETE",
        "/v1/apps/{app}",
        doomed_app,
        expect(404, 404, 404, 404, 204, oauth=404, user=404),
        "admin",
        "c_admin",
    ),
    Row(
        "POST",
        "/v1/apps/{app}/rotate-secret",
        fixed(lambda w: f"{r_app(w)}/rotate-secret"),
        OWN_APP_ONLY,
        "admin",
        "c_admin",
    ),
    Row(
        "POST",
        "/v1/apps/{app}/keys",
        fixed(lambda w: f"{r_app(w)}/keys", json={"name": "matrix"}),
        expect(404, 404, 404, 403, 201, oauth=403, user=404),
        "admin",
        "c_admin",
    ),
    Row(
        "GET",
        "/v1/apps/{app}/keys",
        fixed(lambda w: f"{r_app(w)}/keys"),
        OWN_APP_ONLY,
        "admin",
        "c_admin",
    ),
    Row(
        "DELETE",
        "/v1/apps/{app}/keys/{key_id}",
        doomed_key,
        expect(404, 404, 404, 403, 204, oauth=403, user=404),
        "admin",
        "c_admin",
    ),
    Row(
        "POST",
        "/v1/apps/{app}/keys/{key_id}/rotate",
        rotated_key,
        expect(404, 404, 404, 403, 201, oauth=403, user=404),
        "admin",
        "c_admin",
    ),
    # The audit log, asked for C's rows.
    Row(
        "GET",
        "/v1/audit",
        fixed(lambda w: "/v1/audit", params=lambda w: {"org": w.consumer}),
        expect(404, 403, 403, 403, 200, oauth=403, user=403),
        "admin",
        "c_admin",
        check=own_audit_rows,
    ),
    Row(
        "GET",
        "/v1/audit/export",
        fixed(lambda w: "/v1/audit/export", params=lambda w: {"org": w.consumer}),
        expect(404, 403, 403, 403, 200, oauth=403, user=403),
        "admin",
        "c_admin",
        check=own_audit_rows,
    ),
    # Platform administration.
    Row(
        "POST",
        "/v1/admin/signing-keys/rotate",
        fixed(lambda w: "/v1/admin/signing-keys/rotate"),
        PLATFORM_ADMIN_ONLY,
        "admin",
        "p_admin",
    ),
    Row(
        "GET",
        "/v1/admin/signing-keys",
        fixed(lambda w: "/v1/admin/signing-keys"),
        PLATFORM_ADMIN_ONLY,
        "admin",
        "p_admin",
    ),
    # Plans: everyone authenticated reads them; only the platform admin changes them.
    Row("POST", "/v1/plans", new_plan, PLATFORM_ADMIN_ONLY_CREATE, "admin", "p_admin"),
    Row("GET", "/v1/plans", fixed(lambda w: "/v1/plans"), ALL_200, None),
    Row("GET", "/v1/plans/{plan}", fixed(lambda w: "/v1/plans/default"), ALL_200, None),
    Row("PATCH", "/v1/plans/{plan}", patched_plan, PLATFORM_ADMIN_ONLY, "admin", "p_admin"),
    Row(
        "DELETE",
        "/v1/plans/{plan}",
        doomed_plan,
        expect(403, 403, 403, 403, 204, oauth=403, user=403),
        "admin",
        "p_admin",
    ),
    Row(
        "GET",
        "/v1/apps/{app}/usage",
        fixed(lambda w: f"{r_app(w)}/usage"),
        expect(404, 404, 404, 200, 200, oauth=200, user=404),
        "admin",
        "c_admin",
    ),
    Row(
        "POST",
        "/v1/users",
        new_user,
        expect(403, 403, 403, 403, 201, oauth=403, user=403),
        "admin",
        "p_admin",
    ),
    Row(
        "GET",
        "/v1/me",
        fixed(lambda w: "/v1/me"),
        # Every credential may ask who it is; it learns nothing it cannot already do.
        expect(200, 200, 200, 200, 200, oauth=200, user=200),
        None,
        not_denied=frozenset(PRINCIPAL_COLUMNS),
    ),
    Row(
        "GET",
        "/v1/users/me",
        fixed(lambda w: "/v1/users/me"),
        # No user stands behind an app or admin key; the signed-in user is one.
        expect(404, 404, 404, 404, 404, oauth=404, user=200),
        None,
        not_denied=frozenset(PRINCIPAL_COLUMNS),
    ),
    Row(
        "PATCH",
        "/v1/users/{user_id}",
        fixed(lambda w: f"/v1/users/{w.user_id}", json={"disabled": False}),
        PLATFORM_ADMIN_ONLY,
        "admin",
        "p_admin",
    ),
    # Access requests and grants.
    Row(
        "POST",
        "/v1/datasets/{ds}/access-requests",
        new_request,
        # Anyone may ask for its own app, no one for another's.
        expect(422, 201, 201, 201, 201, oauth=201, user=422),
        None,
        hidden_422=frozenset({"wrong_org", "member_user"}),
    ),
    Row(
        "GET",
        "/v1/access-requests",
        fixed(lambda w: "/v1/access-requests", params={"limit": "1000"}),
        ALL_200,
        None,
        check=own_app_items,
    ),
    Row(
        "GET",
        "/v1/access-requests/{request_id}",
        fixed(lambda w: f"/v1/access-requests/{w.request_id}"),
        expect(404, 200, 404, 200, 200, oauth=200, user=404),
        None,
    ),
    Row(
        "POST",
        "/v1/access-requests/{request_id}/approve",
        approved_request,
        OWN_APP_ONLY,
        "admin",
        "p_admin",
    ),
    Row(
        "POST",
        "/v1/access-requests/{request_id}/reject",
        rejected_request,
        OWN_APP_ONLY,
        "admin",
        "p_admin",
    ),
    Row(
        "GET",
        "/v1/grants",
        fixed(lambda w: "/v1/grants", params={"limit": "1000"}),
        ALL_200,
        None,
        check=own_app_items,
    ),
    Row(
        "GET",
        "/v1/grants/{grant_id}",
        fixed(lambda w: f"/v1/grants/{w.grant_id}"),
        expect(404, 200, 404, 200, 200, oauth=200, user=404),
        None,
    ),
    Row(
        "DELETE",
        "/v1/grants/{grant_id}",
        doomed_grant,
        expect(404, 404, 404, 403, 204, oauth=403, user=404),
        "admin",
        "p_admin",
    ),
    # Records of D. Sorting on the hidden field is a 400, as for a field that does not exist.
    Row(
        "GET",
        "/v1/datasets/{ds}/records",
        fixed(lambda w: f"/v1/datasets/{w.ds}/records", params={"sort": "secret"}),
        expect(404, 403, 400, 200, 200, oauth=200, user=200),
        "records:read",
    ),
    Row(
        "POST",
        "/v1/datasets/{ds}/records",
        new_record,
        expect(404, 403, 403, 201, 201, oauth=201, user=201),
        "records:write",
    ),
    Row(
        "GET",
        "/v1/datasets/{ds}/records/{record_id}",
        fixed(lambda w: f"/v1/datasets/{w.ds}/records/{w.record_id}"),
        expect(404, 403, 200, 200, 200, oauth=200, user=200),
        "records:read",
    ),
    Row(
        "PUT",
        "/v1/datasets/{ds}/records/{record_id}",
        put_record,
        expect(404, 403, 403, 201, 201, oauth=201, user=201),
        "records:write",
    ),
    Row(
        "PATCH",
        "/v1/datasets/{ds}/records/{record_id}",
        patched_record,
        expect(404, 403, 403, 200, 200, oauth=200, user=200),
        "records:write",
    ),
    Row(
        "DELETE",
        "/v1/datasets/{ds}/records/{record_id}",
        doomed_record,
        expect(404, 403, 403, 204, 204, oauth=204, user=204),
        "records:write",
    ),
    Row(
        "POST",
        "/v1/datasets/{ds}/import",
        imported,
        expect(404, 403, 403, 200, 200, oauth=200, user=200),
        "records:write",
    ),
    Row(
        "GET",
        "/v1/datasets/{ds}/export",
        fixed(lambda w: f"/v1/datasets/{w.ds}/export", params={"format": "ndjson"}),
        expect(404, 403, 200, 200, 200, oauth=200, user=200),
        "records:read",
    ),
    Row(
        "GET",
        "/v1/datasets/{ds}/changes",
        fixed(lambda w: f"/v1/datasets/{w.ds}/changes"),
        expect(404, 403, 200, 200, 200, oauth=200, user=200),
        "changes:read",
        check=narrowed_changes,
    ),
    Row(
        "POST",
        "/v1/datasets/{ds}/changes/tickets",
        fixed(lambda w: f"/v1/datasets/{w.ds}/changes/tickets"),
        expect(404, 403, 200, 200, 200, oauth=200, user=200),
        "changes:read",
        check=stream_ticket,
    ),
    # Webhooks of the right-grant app (on hook_ds). The narrowed app is a sibling
    # app of the same organisation without the admin scope: it sees no such thing.
    Row(
        "POST",
        "/v1/apps/{app}/webhooks",
        new_webhook,
        own_webhook_only(201),
        "webhooks:manage",
        check=created_webhook,
    ),
    Row(
        "GET",
        "/v1/apps/{app}/webhooks",
        fixed(lambda w: f"{r_app(w)}/webhooks", params={"limit": "1000"}),
        own_webhook_only(200),
        "webhooks:manage",
        check=own_webhooks,
    ),
    Row(
        "GET",
        "/v1/webhooks/{webhook}",
        fixed(lambda w: f"/v1/webhooks/{w.webhook_id}"),
        own_webhook_only(200),
        "webhooks:manage",
    ),
    Row(
        "PATCH",
        "/v1/webhooks/{webhook}",
        patched_webhook,
        own_webhook_only(200),
        "webhooks:manage",
    ),
    Row(
        "DELETE",
        "/v1/webhooks/{webhook}",
        doomed_webhook,
        own_webhook_only(204),
        "webhooks:manage",
    ),
    Row(
        "GET",
        "/v1/webhooks/{webhook}/deliveries",
        fixed(lambda w: f"/v1/webhooks/{w.webhook_id}/deliveries"),
        own_webhook_only(200),
        "webhooks:manage",
    ),
    Row(
        "POST",
        "/v1/webhooks/{webhook}/deliveries/{delivery}/retry",
        retried_delivery,
        own_webhook_only(200),
        "webhooks:manage",
    ),
    Row(
        "POST",
        "/v1/webhooks/{webhook}/replay",
        # hook_ds has no changes: the replay is allowed and queues nothing.
        fixed(
            lambda w: f"/v1/webhooks/{w.webhook_id}/replay",
            json=lambda w: {"dataset": w.hook_ds, "from_seq": 1},
        ),
        own_webhook_only(200),
        "webhooks:manage",
    ),
    Row(
        "POST",
        "/v1/webhooks/{webhook}/rotate-secret",
        rotated_webhook,
        own_webhook_only(200),
        "webhooks:manage",
    ),
]

# Served by direct routes placed before FastAPI's router (entrepot.direct_routes): these
# rows run twice, on the app as served and on one without its direct routes ("routed"),
# with the same expected status in every column.
DIRECT_OPERATIONS = frozenset(
    {
        ("GET", "/v1/datasets/{ds}/records"),
        ("POST", "/v1/datasets/{ds}/records"),
        ("GET", "/v1/datasets/{ds}/records/{record_id}"),
        ("PUT", "/v1/datasets/{ds}/records/{record_id}"),
        ("PATCH", "/v1/datasets/{ds}/records/{record_id}"),
        ("DELETE", "/v1/datasets/{ds}/records/{record_id}"),
        ("POST", "/v1/datasets/{ds}/import"),
        ("GET", "/v1/datasets/{ds}/export"),
    }
)
SERVED, ROUTED = "served", "routed"
SUFFIX = {SERVED: "", ROUTED: "-routed"}  # as-served cells keep their ids

CELLS = [
    pytest.param(row, column, via, id=f"{row.method} {row.path}-{column}{SUFFIX[via]}")
    for row in ROWS
    for column in COLUMNS
    for via in ((SERVED, ROUTED) if row.operation in DIRECT_OPERATIONS else (SERVED,))
]


@pytest.fixture(scope="module")
async def routed_anon(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client of a second app on the same store, without direct routes:
    every request goes through FastAPI's router and dependency solver."""
    application = routed_only(create_app(settings))
    assert not any(isinstance(r, DirectRoute) for r in application.router.routes)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture
def caller(via: str, request: pytest.FixtureRequest) -> httpx.AsyncClient:
    """The app a cell's request goes to: as served, or the routed one (started only if used)."""
    client: httpx.AsyncClient = request.getfixturevalue("anon" if via == SERVED else "routed_anon")
    return client


def operations(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the OpenAPI document describes."""
    return {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete", "head", "options")
    }


# --- the tests ------------------------------------------------------------------------


def test_every_endpoint_has_a_row(app: FastAPI) -> None:
    documented = operations(app)
    covered = {row.operation for row in ROWS}
    assert len(covered) == len(ROWS), "an operation has two rows"
    assert set(UNAUTHENTICATED) <= documented, (
        f"exempt operations that no longer exist: {sorted(set(UNAUTHENTICATED) - documented)}"
    )
    missing = documented - set(UNAUTHENTICATED) - covered
    assert not missing, (
        "Operations without a row in the authorisation matrix; add a Row to ROWS in "
        f"{__name__} with the exact status of every column: {sorted(missing)}"
    )
    stale = covered - documented
    assert not stale, f"Rows for operations the OpenAPI document no longer has: {sorted(stale)}"


def test_the_document_declares_the_scope_each_row_needs(app: FastAPI) -> None:
    """The OpenAPI document's security (entrepot.reference.operations) says what this
    matrix enforces: the missing_scope column is refused without exactly that scope."""
    paths = app.openapi()["paths"]
    for row in ROWS:
        security = paths[row.path][row.method.lower()]["security"]
        declared = {
            scheme: scopes for requirement in security for scheme, scopes in requirement.items()
        }
        wanted = [row.needs] if row.needs else []
        assert declared == {"bearer": wanted, "oauth2": wanted}, (row.operation, declared)
    for method, path in UNAUTHENTICATED:
        assert paths[path][method.lower()]["security"] == [], (method, path)


def test_every_status_a_cell_expects_is_declared(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    for row in ROWS:
        declared = set(paths[row.path][row.method.lower()]["responses"])
        seen = {str(row.status(column)) for column in COLUMNS}
        assert seen <= declared, (row.operation, sorted(seen - declared))


def test_every_direct_route_runs_both_ways(app: FastAPI) -> None:
    """DIRECT_OPERATIONS is exactly what the served app answers with direct routes."""
    direct = {
        (method, route.path)
        for route in app.router.routes
        if isinstance(route, DirectRoute)
        for method in route.declared.methods
    }
    assert direct == DIRECT_OPERATIONS
    assert {row.operation for row in ROWS} >= DIRECT_OPERATIONS


@pytest.mark.parametrize(("row", "column", "via"), CELLS)
async def test_cell(
    row: Row,
    column: str,
    via: str,
    world: World,
    caller: httpx.AsyncClient,
    db: asyncpg.Connection,
) -> None:
    call = await row.make(world, column)
    rid = "matrix-" + uuid.uuid4().hex
    headers = {**call.headers, "X-Request-ID": rid}
    token = (
        await world.key_without(row.actor, row.needs)
        if column == "missing_scope"
        else world.tokens[column]
    )
    if token is not None:
        headers.update(bearer(token))
    response = await caller.request(
        row.method,
        call.path,
        params=call.params,
        json=call.json,
        content=call.content,
        headers=headers,
    )
    expected = row.status(column)
    assert response.status_code == expected, (
        f"{row.method} {row.path} as {column} ({via}): expected {expected}, "
        f"got {response.status_code}: {response.text[:400]}"
    )
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), response.headers
    if row.check is not None and response.is_success:
        row.check(world, column, response)
    if column not in SEES_SECRET:
        assert SECRET not in response.text, f"{column} saw the hidden field's value"
    denied = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE request_id = $1 AND outcome = 'denied'", rid
    )
    assert denied == (1 if row.denial(column) else 0), (
        f"{row.method} {row.path} as {column} ({response.status_code}) "
        f"left {denied} denied audit rows"
    )


# --- the exempt endpoints ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/readyz",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/openapi.json",
        "/docs",
    ],
)
async def test_public_endpoints_need_no_credential_and_ignore_a_bad_one(
    anon: httpx.AsyncClient, path: str
) -> None:
    assert (await anon.get(path)).status_code == 200
    assert (
        await anon.get(path, headers=bearer("ent_" + secrets.token_urlsafe(32)))
    ).status_code == 200


async def test_the_token_endpoint_uses_client_authentication_not_bearer(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, world: World
) -> None:
    app = await make_app(client, world.consumer, scopes=READ)
    form = {"grant_type": "client_credentials"}
    missing = await anon.post("/oauth/token", data=form)
    assert missing.status_code == 401, missing.text
    assert missing.json()["error"] == "invalid_client"
    assert missing.headers["WWW-Authenticate"].startswith("Basic")

    # An API key is no client credential.
    with_key = await anon.post(
        "/oauth/token", data=form, headers=bearer(world.tokens["admin"] or "")
    )
    assert with_key.status_code == 401, with_key.text
    assert with_key.json()["error"] == "invalid_client"

    issued = await anon.post(
        "/oauth/token", data=form, auth=(app["client_id"], app["client_secret"])
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    # The token is a bearer credential like a key: the matrix's rules apply to it.
    assert (await anon.get(f"/v1/datasets/{world.ds}", headers=bearer(token))).status_code == 404
    assert (await anon.get(f"/v1/orgs/{world.consumer}", headers=bearer(token))).status_code == 200


async def test_password_login_needs_no_bearer(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, world: World
) -> None:
    body = {"email": world.user_email, "password": PASSWORD}
    assert (await anon.post("/v1/auth/token", json=body)).status_code == 200
    stray = bearer("ent_" + secrets.token_urlsafe(32))
    assert (await anon.post("/v1/auth/token", json=body, headers=stray)).status_code == 200
    wrong = await anon.post("/v1/auth/token", json={**body, "password": "not " + PASSWORD})
    assert wrong.status_code == 401


# --- public datasets --------------------------------------------------------------------


async def test_a_public_dataset_is_readable_by_any_app_and_writable_by_none_without_a_grant(
    world: World, anon: httpx.AsyncClient
) -> None:
    ds = world.public_ds
    outsider = bearer(world.tokens["wrong_org"] or "")
    for path in (
        f"/v1/datasets/{ds}",
        f"/v1/datasets/{ds}/records",
        f"/v1/datasets/{ds}/records/{world.record_id}",
        f"/v1/datasets/{ds}/export",
    ):
        assert (await anon.get(path, headers=outsider)).status_code == 200, path
    sku = unique("pub")
    writes = [
        ("POST", f"/v1/datasets/{ds}/records", record(sku)),
        ("PUT", f"/v1/datasets/{ds}/records/{sku}", record(sku)),
        ("PATCH", f"/v1/datasets/{ds}/records/{world.record_id}", {"name": "x"}),
        ("DELETE", f"/v1/datasets/{ds}/records/{world.record_id}", None),
    ]
    for method, path, body in writes:
        response = await anon.request(method, path, json=body, headers=outsider)
        assert response.status_code == 403, (method, path, response.text)
    assert (await anon.get(f"/v1/datasets/{ds}/records")).status_code == 401


# --- the columns mean what they say -----------------------------------------------------


async def test_the_columns_are_what_they_claim(world: World, anon: httpx.AsyncClient) -> None:
    """The grant columns differ only in the hidden field, and the outsider sees no D."""
    record_path = f"/v1/datasets/{world.ds}/records/{world.record_id}"
    for column in sorted(SEES_SECRET):
        seen = await anon.get(record_path, headers=bearer(world.tokens[column] or ""))
        assert seen.json()["data"]["secret"] == SECRET, column
        feed = await anon.get(
            f"/v1/datasets/{world.ds}/changes", headers=bearer(world.tokens[column] or "")
        )
        assert SECRET in feed.text, column

    narrowed = bearer(world.tokens["grant_without_field"] or "")
    seen = await anon.get(record_path, headers=narrowed)
    assert seen.json()["data"] == {"sku": world.record_id, "name": "Thing r-shared", "price": 10}
    records = f"/v1/datasets/{world.ds}/records"
    for params in ({"filter[secret]": SECRET}, {"sort": "secret"}, {"fields": "sku,secret"}):
        hidden = await anon.get(records, params=params, headers=narrowed)
        assert hidden.status_code == 400, (params, hidden.text)
    writes = await anon.post(records, json=record(unique("n")), headers=narrowed)
    assert writes.status_code == 403

    def names(response: httpx.Response) -> set[str]:
        assert response.status_code == 200, response.text
        return {d["name"] for d in response.json()["data"]}

    catalog = {"org": world.provider, "limit": "1000"}
    for column, sees_d in (
        ("wrong_org", False),
        ("grant_without_field", True),
        ("right_grant", True),
    ):
        listed = names(
            await anon.get(
                "/v1/datasets", params=catalog, headers=bearer(world.tokens[column] or "")
            )
        )
        assert (world.ds in listed) is sees_d, column
        assert world.public_ds in listed, column


async def test_the_token_columns_are_the_credentials_they_claim(
    world: World, anon: httpx.AsyncClient
) -> None:
    """right_grant_oauth is a signed token of the right-grant app, not one of its keys;
    member_user is a signed-in user holding the member role in P and nowhere else."""
    oauth, user = world.tokens["right_grant_oauth"] or "", world.tokens["member_user"] or ""
    for token in (oauth, user):
        assert token.count(".") == 2, "an access token is a JWT"
        assert not token.startswith("ent_"), "not an API key"
    apps = await anon.get("/v1/apps", headers=bearer(oauth))
    assert [a["id"] for a in apps.json()["data"]] == [world.app_id("right")]
    assert (await anon.get("/v1/users/me", headers=bearer(oauth))).status_code == 404
    me = await anon.get("/v1/users/me", headers=bearer(user))
    assert me.status_code == 200, me.text
    assert me.json()["is_platform_admin"] is False
    assert [(m["org"], m["role"]) for m in me.json()["memberships"]] == [(world.provider, "member")]


async def test_a_key_issued_with_no_scopes_holds_none(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, world: World
) -> None:
    issued = await client.post(
        f"/v1/apps/{world.app_id('right')}/keys", json={"name": "nothing", "scopes": []}
    )
    assert issued.status_code == 201, issued.text
    assert issued.json()["scopes"] == []
    key = bearer(issued.json()["key"])
    assert (await anon.get("/v1/datasets", headers=key)).status_code == 403
    record_path = f"/v1/datasets/{world.ds}/records/{world.record_id}"
    assert (await anon.get(record_path, headers=key)).status_code == 403
