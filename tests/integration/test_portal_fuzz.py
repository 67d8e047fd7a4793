"""No portal page or form answers 5xx, whatever is sent (issue 11, acceptance 2).

A signed-in owner of an organisation with an app, a key, a dataset and a pending
request sends every POST route of the portal, with a valid CSRF token, each of its
fields set to each hostile value (and left out, and repeated), and every GET page
with hostile query parameters and path segments. Each answer must be below 500; the
ones that refuse say so in a page, not in a traceback.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from entrepot.portal.console_routes import PAGES
from entrepot.portal.routes import routes
from tests.factories import make_org, unique
from tests.integration.portal_helpers import csrf_of, make_person, sign_in

BASE = "http://testserver"
HOSTILE: list[str | list[str]] = [
    "",
    " ",
    "x" * 5000,
    "ü🙂 ∑ 中文 \u202e",
    "\x00",
    "a\x00b",
    "-1",
    "1e400",
    "NaN",
    "null",
    "true",
    "{}",
    "[]",
    '{"region": {"between": [1, 2]}}',
    '{"a": 1, "a": 2}',
    "{not json",
    "9999-99-99",
    "2000-01-01",
    "<script>alert(1)</script>",
    "'; DROP TABLE users; --",
    "../../etc/passwd",
    "//evil.example/",
    str(uuid.uuid4()),
    "admin",
    ["a", "b"],  # a field repeated
]
# The fields each form sends (templates/*.html); a route missing here fails the test.
FIELDS = {
    "/portal/setup": ("email", "password", "password_again", "org", "org_title"),
    "/portal/sign-in": ("email", "password", "next"),
    "/portal/account/password": ("current_password", "new_password", "new_password_again"),
    "/portal/org": ("org", "back"),
    "/portal/catalog/{name}/access-requests": ("app", "scopes", "reason", "as_app"),
    "/portal/approvals/{request}/approve": (
        "scopes",
        "narrow_fields",
        "fields",
        "row_filter",
        "expires_on",
        "note",
    ),
    "/portal/approvals/{request}/reject": ("note",),
    "/portal/grants/{grant}/revoke": ("from",),
    "/portal/apps": ("name", "description", "scopes"),
    "/portal/apps/{app}/secret": (),
    "/portal/apps/{app}/keys": ("name", "scopes"),
    "/portal/apps/{app}/keys/{key}/rotate": (),
    "/portal/apps/{app}/keys/{key}/revoke": (),
}
# The provider's, webhook and console pages: fuzzed in test_portal_console_fuzz.py.
CONSOLE = {"/portal" + path for path, _, _ in PAGES}
PATH_VALUES = ("x", str(uuid.uuid4()), "A" * 300, "..", "%2e%2e", "ü")


@pytest.fixture
async def owner(
    app: FastAPI, client: httpx.AsyncClient
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    org = (await make_org(client))["name"]
    other = (await make_org(client))["name"]
    email = await make_person(client, org)
    ds = unique("ds")
    made = await client.post(
        "/v1/datasets",
        json={
            "name": ds,
            "org": other,
            "title": "T",
            "schema": {"type": "object", "properties": {"k": {"type": "string"}}},
            "primary_key": "k",
        },
    )
    assert made.status_code == 201, made.text
    own = unique("own")
    made = await client.post(
        "/v1/datasets",
        json={
            "name": own,
            "org": org,
            "title": "Own",
            "schema": {"type": "object", "properties": {"k": {"type": "string"}}},
        },
    )
    assert made.status_code == 201, made.text
    app_made = await client.post("/v1/apps", json={"org": org, "name": unique("app")})
    app_id = app_made.json()["id"]
    key = await client.post(f"/v1/apps/{app_id}/keys", json={"name": "k"})
    asked = await client.post(
        f"/v1/datasets/{ds}/access-requests", json={"app": app_id, "scopes": ["records:read"]}
    )
    assert asked.status_code == 201, asked.text
    ids = {
        "name": ds,
        "app": app_id,
        "key": key.json()["id"],
        "request": asked.json()["id"],
        "grant": str(uuid.uuid4()),
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as b:
        await sign_in(b, email)
        yield b, ids


def _forms(ids: dict[str, str]) -> list[tuple[str, tuple[str, ...]]]:
    """Every POST route but sign-out (last: it ends the session) and its fields."""
    forms = []
    for route in routes():
        if route.path in CONSOLE:
            continue
        if "POST" in getattr(route, "methods", ()) and route.path != "/portal/sign-out":
            path = re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], route.path)
            forms.append((path, FIELDS[route.path]))
    return forms


async def test_no_form_field_value_gives_a_5xx(
    owner: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    browser, ids = owner
    token = csrf_of((await browser.get("/portal/")).text)
    seen: set[int] = set()
    for path, fields in _forms(ids):
        for name, value in itertools.product(fields, HOSTILE):
            answer = await browser.post(path, data={"csrf_token": token, name: value})
            assert answer.status_code < 500, (path, name, value, answer.text[:500])
            seen.add((path.split("/")[-1], answer.status_code))
        missing = await browser.post(path, data={"csrf_token": token})
        assert missing.status_code < 500, (path, missing.text[:500])
        for raw in (b"csrf_token=" + token.encode() + b"&name=%FF%FE", b"\xff\xfe", b"a" * 10):
            answer = await browser.post(
                path, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
            assert answer.status_code < 500, (path, raw, answer.text[:500])
        json_body = await browser.post(path, json={"csrf_token": token})
        assert json_body.status_code < 500, (path, json_body.text[:500])
    statuses = {status for _, status in seen}
    assert {201, 400, 401, 403, 404, 409, 422} <= statuses  # both made and refused


async def test_no_page_gives_a_5xx_for_any_query_or_path(
    owner: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    browser, ids = owner
    for route in routes():
        if "GET" not in getattr(route, "methods", ()) or route.path in CONSOLE:
            continue
        names = re.findall(r"{(\w+)}", route.path)
        choices = [[ids[n], *PATH_VALUES] for n in names] or [[]]
        for values in itertools.product(*choices):
            path = route.path
            for n, v in zip(names, values, strict=True):
                path = path.replace("{" + n + "}", v)
            for param in ("q", "tag", "cursor", "app", "name", "next"):
                for value in ("", "x" * 3000, "ü🙂", "'\"<>", str(uuid.uuid4()), "eyJ4Ijox"):
                    answer = await browser.get(path, params={param: value})
                    assert answer.status_code < 500, (path, param, value, answer.text[:500])
