"""The API answers as it did when these answers were recorded: statuses, headers, bodies.

One scripted session touches every operation of the OpenAPI document, the
good paths and the usual mistakes, on a database of its own, one request at
a time. Its answers, normalised (``normalise.py``), must equal
``answers.json``. A change that alters an answer on purpose re-records it:

    ENTREPOT_RECORD_ANSWERS=1 .venv/bin/pytest tests/contract

and the diff of ``answers.json`` shows the reviewer exactly what changed.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN, app_and_client, prepared_database
from tests.contract.normalise import Normaliser

ANSWERS = Path(__file__).with_name("answers.json")
RECORDING = os.environ.get("ENTREPOT_RECORD_ANSWERS") == "1"
SCHEMA = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "name": {"type": "string"},
        "price": {"type": "number", "minimum": 0},
        "region": {"type": "string"},
    },
    "required": ["sku", "name"],
    "additionalProperties": False,
}
NDJSON = {"Content-Type": "application/x-ndjson"}


class Session:
    """Sends the script's requests in order and keeps every normalised answer."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.normaliser = Normaliser()
        self.answers: list[dict[str, Any]] = []

    async def __call__(
        self,
        method: str,
        path: str,
        *,
        key: str | None = ADMIN_TOKEN,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        expect: int | None = None,
    ) -> Any:
        sent = {"X-Request-ID": f"contract-{len(self.answers) + 1}", **(headers or {})}
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        response = await self.client.request(
            method,
            path,
            json=json_body,
            content=content,
            headers=sent,
            params=params,
            auth=None,
        )
        answer = self.normaliser.answer(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )
        request = {"method": method, "path": self.normaliser.text(path)}
        if params:
            request["params"] = self.normaliser.value(params)
        self.answers.append({"request": request, **answer})
        if expect is not None:
            assert response.status_code == expect, (method, path, response.text)
        kind = response.headers.get("content-type", "")
        if kind.startswith(("application/json", "application/problem+json")) and response.content:
            return response.json()
        return response.text


@pytest.fixture(scope="module")
async def session(fresh_database: Callable[[], Awaitable[str]]) -> AsyncIterator[Session]:
    settings = Settings(
        database_url=await prepared_database(fresh_database),
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        webhook_allowed_networks="127.0.0.0/8",
        webhook_retry_schedule="3600",  # no delivery attempt happens during the script
    )
    app: FastAPI
    async with app_and_client(settings) as (app, client):
        await app.state.components.get(asyncpg.Pool).execute(
            "UPDATE plans SET rate_per_second = 1000000, burst = 1000000 WHERE name = 'default'"
        )
        del client.headers["Authorization"]  # each request says who sends it
        yield Session(client)


async def script(s: Session) -> None:
    """Every operation, in an order that builds what the next ones need."""
    # Operations and discovery
    await s("GET", "/healthz", key=None)
    await s("GET", "/.well-known/oauth-authorization-server", key=None)
    await s("GET", "/v1/apps", key=None, expect=401)
    await s("GET", "/v1/datasets", key=None, expect=200)  # the open datasets: none yet
    await s("GET", "/v1/datasets", key="ent_not-a-key-at-all-000000000000", expect=401)

    # Organisations, users, members
    await s("POST", "/v1/orgs", json_body={"name": "acme", "title": "Acme"}, expect=201)
    await s("POST", "/v1/orgs", json_body={"name": "acme", "title": "Again"}, expect=409)
    await s("POST", "/v1/orgs", json_body={"name": "Bad Name", "title": "x"}, expect=422)
    await s("POST", "/v1/orgs", json_body={"name": "other", "title": "Other"}, expect=201)
    await s("GET", "/v1/orgs", expect=200)
    await s("GET", "/v1/orgs/acme", expect=200)
    await s("GET", "/v1/orgs/nope", expect=404)
    user = await s(
        "POST",
        "/v1/users",
        json_body={"email": "ada@example.org", "password": "correct horse battery"},
        expect=201,
    )
    await s(
        "POST", "/v1/orgs/acme/members", json_body={"email": "ada@example.org", "role": "admin"}
    )
    await s("GET", "/v1/orgs/acme/members", expect=200)
    token = await s(
        "POST",
        "/v1/auth/token",
        key=None,
        json_body={"email": "ada@example.org", "password": "correct horse battery"},
        expect=200,
    )
    await s(
        "POST",
        "/v1/auth/token",
        key=None,
        json_body={"email": "ada@example.org", "password": "wrong"},
        expect=401,
    )
    await s("GET", "/v1/users/me", key=token["access_token"], expect=200)
    await s("GET", "/v1/users/me", expect=404)

    # Plans
    await s("GET", "/v1/plans", expect=200)
    await s("POST", "/v1/plans", json_body={"name": "gold", "rate_per_second": 50, "burst": 100})
    await s("GET", "/v1/plans/gold", expect=200)
    await s("PATCH", "/v1/plans/gold", json_body={"daily_quota": 10000}, expect=200)
    await s("PATCH", "/v1/plans/gold", json_body={"burst": None}, expect=422)

    # Datasets
    await s(
        "POST",
        "/v1/datasets",
        json_body={
            "name": "products",
            "org": "acme",
            "title": "Products",
            "description": "Things for sale",
            "schema": SCHEMA,
            "primary_key": "sku",
            "indexes": ["price"],
            "visibility": "restricted",
            "tags": ["shop"],
        },
        expect=201,
    )
    await s(
        "POST",
        "/v1/datasets",
        json_body={
            "name": "notes",
            "org": "acme",
            "title": "Notes",
            "schema": {"type": "object"},
            "visibility": "public",
        },
        expect=201,
    )
    await s(
        "POST",
        "/v1/datasets",
        json_body={"name": "x", "org": "acme", "title": "X", "schema": {"type": "string"}},
        expect=422,
    )
    await s("GET", "/v1/datasets", params={"tag": "shop"}, expect=200)
    await s("GET", "/v1/datasets/products", expect=200)
    await s("GET", "/v1/datasets/products", key=None, expect=401)  # public, not open
    await s("PATCH", "/v1/datasets/products", json_body={"title": "All products"}, expect=200)
    await s("PATCH", "/v1/datasets/products", json_body={"primary_key": "name"}, expect=409)

    # Records
    records = "/v1/datasets/products/records"
    await s("POST", records, json_body={"sku": "a", "name": "Apple", "price": 1.5}, expect=201)
    await s(
        "POST",
        records,
        json_body={"sku": "b", "name": "Banana", "price": 0.5, "region": "eu"},
        headers={"Idempotency-Key": "create-b"},
        expect=201,
    )
    await s(
        "POST",
        records,
        json_body={"sku": "b", "name": "Banana", "price": 0.5, "region": "eu"},
        headers={"Idempotency-Key": "create-b"},
        expect=201,
    )
    await s(
        "POST",
        records,
        json_body={"sku": "b", "name": "Other"},
        headers={"Idempotency-Key": "create-b"},
        expect=422,
    )
    await s("POST", records, json_body={"sku": "a", "name": "Again"}, expect=409)
    await s("POST", records, json_body={"sku": "c", "price": -1}, expect=422)
    await s("POST", records, content=b"{not json", headers={"Content-Type": "application/json"})
    await s("POST", records, content=b"x", headers={"Content-Type": "text/plain"})
    await s("GET", f"{records}/a", expect=200)
    await s("GET", f"{records}/a", headers={"If-None-Match": '"1"'}, expect=304)
    await s("GET", f"{records}/zz", expect=404)
    await s("HEAD", f"{records}/a", expect=200)
    await s(
        "PUT",
        f"{records}/a",
        json_body={"sku": "a", "name": "Apple", "price": 2},
        headers={"If-Match": '"1"'},
        expect=200,
    )
    await s(
        "PUT",
        f"{records}/a",
        json_body={"sku": "a", "name": "Apple", "price": 3},
        headers={"If-Match": '"1"'},
        expect=412,
    )
    await s("PUT", f"{records}/a", json_body={"sku": "other", "name": "A"}, expect=422)
    await s("PUT", f"{records}/c", json_body={"sku": "c", "name": "Cherry", "price": 4}, expect=201)
    await s("PATCH", f"{records}/c", json_body={"region": "us"}, expect=200)
    await s("PATCH", f"{records}/zz", json_body={"region": "us"}, expect=404)
    await s("DELETE", f"{records}/c", headers={"If-Match": '"9"'}, expect=412)
    await s("DELETE", f"{records}/c", expect=204)
    await s("GET", records, expect=200)
    await s("GET", records, params={"filter[price][lt]": "2", "sort": "-price"}, expect=200)
    page = await s("GET", records, params={"limit": "1"}, expect=200)
    await s("GET", records, params={"limit": "1", "cursor": page["next_cursor"]}, expect=200)
    await s("GET", records, params={"filter[nope]": "1"}, expect=400)
    await s("GET", records, params={"fields": "sku,price"}, expect=200)

    # Bulk
    await s(
        "POST",
        "/v1/datasets/products/import",
        params={"mode": "upsert"},
        content=b'{"sku":"d","name":"Date","price":3}\n{"sku":"e","name":"Elder"}\n',
        headers=NDJSON,
        expect=200,
    )
    await s(
        "POST",
        "/v1/datasets/products/import",
        content=b'{"sku":"f","name":"Fig"}\n{"sku":"g"}\n',
        headers=NDJSON,
        expect=422,
    )
    await s(
        "POST",
        "/v1/datasets/products/import",
        content=b"sku,name,price\nh,Honeydew,2\n",
        headers={"Content-Type": "text/csv"},
        expect=200,
    )
    await s("GET", "/v1/datasets/products/export", expect=200)
    await s("GET", "/v1/datasets/products/export", params={"format": "csv"}, expect=200)
    await s("GET", "/v1/datasets/products/export", params={"envelope": "true"}, expect=200)
    await s("GET", "/v1/datasets/products/export", params={"format": "xml"}, expect=400)

    # Change feed
    await s("GET", "/v1/datasets/products/changes", expect=200)
    await s("GET", "/v1/datasets/products/changes", params={"after": 3, "limit": 2}, expect=200)
    await s("GET", "/v1/datasets/products/changes", params={"after": 999}, expect=410)
    await s("GET", "/v1/datasets/products/changes", params={"after": -1}, expect=400)

    # Apps, keys, OAuth
    consumer = await s(
        "POST",
        "/v1/apps",
        json_body={
            "org": "other",
            "name": "shop",
            "scopes": ["datasets:read", "records:read", "changes:read", "webhooks:manage"],
        },
        expect=201,
    )
    app_id = consumer["id"]
    await s("GET", "/v1/apps", expect=200)
    await s("GET", f"/v1/apps/{app_id}", expect=200)
    await s("PATCH", f"/v1/apps/{app_id}", json_body={"plan": "gold"}, expect=200)
    issued = await s("POST", f"/v1/apps/{app_id}/keys", json_body={"name": "main"}, expect=201)
    key = issued["key"]
    await s("GET", f"/v1/apps/{app_id}/keys", expect=200)
    await s(
        "POST", f"/v1/apps/{app_id}/keys", json_body={"name": "w", "scopes": ["admin"]}, expect=422
    )
    rotated = await s(
        "POST",
        f"/v1/apps/{app_id}/keys/{issued['id']}/rotate",
        json_body={"overlap_seconds": 60},
        expect=201,
    )
    spare = await s("POST", f"/v1/apps/{app_id}/keys", json_body={"name": "spare"}, expect=201)
    await s("DELETE", f"/v1/apps/{app_id}/keys/{spare['id']}", expect=204)
    await s("GET", "/v1/datasets", key=spare["key"], expect=401)
    secret = await s("POST", f"/v1/apps/{app_id}/rotate-secret", expect=200)
    basic = base64.b64encode(f"{consumer['client_id']}:{secret['client_secret']}".encode())
    await s(
        "POST",
        "/oauth/token",
        key=None,
        content=b"grant_type=client_credentials&scope=datasets:read",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {basic.decode()}",
        },
        expect=200,
    )
    await s(
        "POST",
        "/oauth/token",
        key=None,
        content=b"grant_type=password",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    await s("GET", "/.well-known/jwks.json", key=None, expect=200)
    await s("GET", "/v1/admin/signing-keys", expect=200)
    await s("GET", "/v1/datasets", key=rotated["key"], expect=200)

    # Access requests and grants
    await s("GET", "/v1/datasets/products/records/a", key=key, expect=404)
    asked = await s(
        "POST",
        "/v1/datasets/products/access-requests",
        key=key,
        json_body={
            "app": app_id,
            "scopes": ["datasets:read", "records:read", "changes:read"],
            "reason": "show prices",
        },
        expect=201,
    )
    await s("GET", "/v1/access-requests", key=key, expect=200)
    await s("GET", f"/v1/access-requests/{asked['id']}", expect=200)
    approved = await s(
        "POST",
        f"/v1/access-requests/{asked['id']}/approve",
        json_body={"note": "ok", "fields": ["sku", "price"], "row_filter": {"price": {"lt": 2}}},
        expect=200,
    )
    await s(
        "POST", f"/v1/access-requests/{asked['id']}/reject", json_body={"note": "no"}, expect=409
    )
    await s("GET", "/v1/datasets/products/records/b", key=key, expect=200)
    await s("GET", "/v1/datasets/products/records", key=key, expect=200)
    await s("GET", "/v1/datasets/products/changes", key=key, expect=200)
    await s("GET", "/v1/datasets/products", key=key, expect=200)
    await s(
        "PUT",
        "/v1/datasets/products/records/b",
        key=key,
        json_body={"sku": "b", "name": "B"},
        expect=403,
    )
    await s("GET", "/v1/grants", key=key, expect=200)
    await s("GET", f"/v1/grants/{approved['grant_id']}", expect=200)
    again = await s(
        "POST",
        "/v1/datasets/notes/access-requests",
        key=key,
        json_body={"app": app_id, "scopes": ["records:read"], "reason": "r"},
        expect=201,
    )
    await s(
        "POST", f"/v1/access-requests/{again['id']}/reject", json_body={"note": "no"}, expect=200
    )

    # Webhooks
    hook = await s(
        "POST",
        f"/v1/apps/{app_id}/webhooks",
        key=key,
        json_body={"url": "http://127.0.0.1:9/hook", "datasets": ["products"]},
        expect=201,
    )
    await s(
        "POST",
        f"/v1/apps/{app_id}/webhooks",
        key=key,
        json_body={"url": "http://10.0.0.1/hook", "datasets": ["products"]},
        expect=422,
    )
    await s("GET", f"/v1/apps/{app_id}/webhooks", key=key, expect=200)
    await s("GET", f"/v1/webhooks/{hook['id']}", key=key, expect=200)
    await s(
        "PATCH", f"/v1/webhooks/{hook['id']}", key=key, json_body={"disabled": True}, expect=200
    )
    await s(
        "POST",
        f"/v1/webhooks/{hook['id']}/rotate-secret",
        key=key,
        json_body={"overlap_seconds": 0},
        expect=200,
    )
    await s(
        "POST",
        f"/v1/webhooks/{hook['id']}/replay",
        key=key,
        json_body={"dataset": "products", "from_seq": 1},
        expect=409,
    )
    await s(
        "GET",
        f"/v1/webhooks/{hook['id']}/deliveries",
        key=key,
        params={"status": "failed"},
        expect=200,
    )
    await s(
        "POST",
        f"/v1/webhooks/{hook['id']}/deliveries/00000000-0000-0000-0000-000000000000/retry",
        key=key,
        expect=404,
    )
    await s("DELETE", f"/v1/webhooks/{hook['id']}", key=key, expect=204)

    # Usage and audit
    await s("GET", f"/v1/apps/{app_id}/usage", params={"granularity": "day"}, expect=200)
    await s("GET", "/v1/audit", params={"action": "dataset.created"}, expect=200)
    await s("GET", "/v1/audit", key=key, expect=403)
    await s("GET", "/v1/audit/export", params={"action": "org.created"}, expect=200)

    # Removals
    await s("DELETE", f"/v1/grants/{approved['grant_id']}", expect=204)
    await s("GET", "/v1/datasets/products/records/b", key=key, expect=404)
    await s("PATCH", f"/v1/users/{user['id']}", json_body={"disabled": True}, expect=200)
    await s("DELETE", f"/v1/orgs/acme/members/{user['id']}", expect=204)
    await s("POST", "/v1/admin/signing-keys/rotate", expect=200)
    await s("DELETE", "/v1/plans/gold", expect=409)
    await s("DELETE", f"/v1/apps/{app_id}", expect=204)
    await s("DELETE", "/v1/plans/gold", expect=204)
    await s("DELETE", "/v1/datasets/notes", expect=204)
    await s("GET", "/v1/datasets/notes", expect=404)
    await s("GET", "/readyz", key=None, expect=200)
    # The landing page is for browsers (Accept: text/html); API clients get what they
    # always got at the root, before it existed.
    await s("GET", "/", expect=404)

    # Stream tickets, for a browser's EventSource (last: nothing above counts them)
    issued = await s("POST", "/v1/datasets/products/changes/tickets", expect=200)
    await s("POST", "/v1/datasets/nope/changes/tickets", expect=404)
    await s(
        "GET",
        "/v1/datasets/products/changes",
        key=None,
        params={"ticket": issued["ticket"]},
        expect=403,  # the JSON feed: a ticket opens the event stream only
    )


def _without_audit_ids(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit row ids count every row written before, background ones included."""
    for answer in answers:
        if answer["request"]["path"].startswith("/v1/audit"):
            body = answer["body"]
            if isinstance(body, dict):
                for row in body.get("data", []):
                    row["id"] = "<audit-id>"
            elif isinstance(body, str):
                answer["body"] = "\n".join(
                    json.dumps({**json.loads(line), "id": "<audit-id>"}, sort_keys=True)
                    for line in body.splitlines()
                    if line
                )
    return answers


async def test_every_answer_is_the_recorded_one(session: Session) -> None:
    await script(session)
    answers = _without_audit_ids(session.answers)
    text = json.dumps(answers, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if RECORDING or not ANSWERS.exists():
        ANSWERS.write_text(text)
        if not RECORDING:
            pytest.fail(f"{ANSWERS.name} was missing: recorded it; review and commit it")
    recorded = json.loads(ANSWERS.read_text())
    assert len(answers) == len(recorded), "the script changed: record again"
    for got, want in zip(answers, recorded, strict=True):
        assert got == want, (
            f"{got['request']} answered differently:\n"
            f"got  {json.dumps(got, sort_keys=True)}\nwant {json.dumps(want, sort_keys=True)}"
        )
