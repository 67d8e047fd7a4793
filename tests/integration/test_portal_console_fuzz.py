"""No provider, webhook or console page answers 5xx, whatever is sent (issue 11,
acceptance 2, for the pages of console_routes.py; test_portal_fuzz.py covers the rest).

A platform administrator who owns an organisation with a dataset, an application and
its webhook sends every POST route, with a valid CSRF token, each of its fields set to
each hostile value (and left out, and repeated), the import form hostile files and
broken multipart bodies, and every GET page hostile queries and path segments.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from entrepot.portal.console_routes import PAGES
from tests.e2e.test_webhook_delivery import Receiver
from tests.factories import make_app, make_dataset, make_org
from tests.integration.portal_console import Console, console_app, token_of, upload
from tests.integration.portal_helpers import make_person
from tests.integration.test_portal_fuzz import HOSTILE, PATH_VALUES

# The fields each form sends (templates/*.html); a route missing here fails the test.
FIELDS: dict[str, tuple[str, ...]] = {
    "/datasets": (
        "name",
        "title",
        "description",
        "visibility",
        "primary_key",
        "tags",
        "schema",
        "auto_approve",
    ),
    "/datasets/new/check": ("schema", "primary_key"),
    "/datasets/{name}/edit": (
        "title",
        "description",
        "visibility",
        "tags",
        "schema",
        "auto_approve",
    ),
    "/datasets/{name}/edit/check": ("schema",),
    "/datasets/{name}/import": ("format", "mode", "on_error"),
    "/webhooks": ("app", "url", "datasets", "events"),
    "/webhooks/{hook}/state": ("state",),
    "/webhooks/{hook}/rotate-secret": ("overlap_seconds",),
    "/webhooks/{hook}/replay": ("dataset", "from_seq"),
    "/webhooks/{hook}/deliveries/{delivery}/retry": (),
    "/webhooks/{hook}/delete": (),
    "/admin/plans": ("name", "rate_per_second", "burst", "daily_quota", "monthly_quota"),
    "/admin/plans/assign": ("app", "plan"),
    "/admin/orgs": ("name", "title"),
    "/admin/users": ("email", "password", "is_platform_admin"),
    "/admin/users/{user}/state": ("state",),
    "/admin/members": ("email", "org", "role"),
}
FILES = [
    b"",
    b"\x00\xff\xfe",
    b"sku,price\r\n" + b"x" * 300_000 + b",1\r\n",
    b'sku,price\r\n"unclosed,1\r\n',
    b"sku,sku\r\n1,2\r\n",
    b"[" * 5000 + b"\n",
    b'{"sku": "a", "sku": "b", "price": 1}\n',
    b'{"sku": "\\u0000", "price": 1}\n',
    "ü🙂,中文\r\n\u202e,1\r\n".encode(),
    b"\n\n\n",
    b"sku,price\r\n" * 2000,
]
NAMES = ["a.csv", "a.ndjson", "ü🙂.csv", "../../etc/passwd", "x" * 2000 + ".csv", "", "a.txt"]
PAGE_PARAMS = (
    "q",
    "status",
    "created",
    "cursor",
    "actor",
    "action",
    "dataset",
    "outcome",
    "since",
    "until",
    "org",
    "app",
    "done",
)
PAGE_VALUES = (
    "",
    "x" * 3000,
    "ü🙂",
    "'\"<>",
    str(uuid.uuid4()),
    "eyJ4Ijox",
    "2026-13-45T99:99",
    "\x7f",
)


@pytest.fixture(scope="module")
async def console(fresh_database: Callable[[], Awaitable[str]]) -> AsyncIterator[Console]:
    async with console_app(fresh_database) as made:
        yield made


@pytest.fixture
async def admin(console: Console) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    org = (await make_org(console.admin))["name"]
    email = await make_person(console.admin, org, is_platform_admin=True)
    ds = (await make_dataset(console.admin, org, primary_key="sku"))["name"]
    app = await make_app(
        console.admin, org, scopes=["datasets:read", "records:read", "changes:read"]
    )
    receiver = Receiver()
    made = await console.admin.post(
        f"/v1/apps/{app['id']}/webhooks", json={"url": receiver.url, "datasets": [ds]}
    )
    assert made.status_code == 201, made.text
    other = await console.admin.post(
        "/v1/users",
        json={
            "email": f"other-{uuid.uuid4().hex}@example.test",
            "password": "correct horse battery staple",
        },
    )
    ids = {
        "name": ds,
        "hook": made.json()["id"],
        "delivery": str(uuid.uuid4()),
        "user": other.json()["id"],
    }
    try:
        async with console.browser(email) as browser:
            yield browser, ids
    finally:
        receiver.close()


def _path(route_path: str, ids: dict[str, str]) -> str:
    return "/portal" + re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], route_path)


def _posts() -> list[str]:
    found = [path for path, method, _ in PAGES if method == "POST"]
    return sorted(found, key=lambda p: p.endswith("/delete"))  # deleting the webhook last


async def test_no_form_field_value_gives_a_5xx(
    admin: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    browser, ids = admin
    token = await token_of(browser)
    statuses: set[int] = set()
    for route_path in _posts():
        path = _path(route_path, ids)
        if route_path.endswith("/import"):
            continue  # multipart: below
        for name, value in itertools.product(FIELDS[route_path], HOSTILE):
            answer = await browser.post(path, data={"csrf_token": token, name: value})
            assert answer.status_code < 500, (path, name, value, answer.text[:500])
            statuses.add(answer.status_code)
        missing = await browser.post(path, data={"csrf_token": token})
        assert missing.status_code < 500, (path, missing.text[:500])
        for raw in (b"csrf_token=" + token.encode() + b"&name=%FF%FE", b"\xff\xfe", b"a" * 10):
            answer = await browser.post(
                path, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
            assert answer.status_code < 500, (path, raw, answer.text[:500])
        json_body = await browser.post(path, json={"csrf_token": token})
        assert json_body.status_code < 500, (path, json_body.text[:500])
    assert {200, 303, 400, 404, 422} <= statuses  # both done and refused


async def test_no_upload_gives_a_5xx(admin: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    browser, ids = admin
    ds = ids["name"]
    token = await token_of(browser, f"/portal/datasets/{ds}/import")
    path = f"/portal/datasets/{ds}/import"
    for name, value in itertools.product(FIELDS["/datasets/{name}/import"], HOSTILE):
        fields = {name: value} if isinstance(value, str) else {}
        answer = await upload(browser, ds, b"sku,price\r\nf-1,1\r\n", token=token, **fields)
        assert answer.status_code < 500, (name, value, answer.text[:500])
    for content, filename in itertools.product(FILES, NAMES):
        for on_error in ("abort", "skip"):
            answer = await upload(
                browser, ds, content, filename=filename, token=token, on_error=on_error
            )
            assert answer.status_code < 500, (content[:40], filename, answer.text[:500])
    boundary = "XyZ"
    for raw in (
        b"",
        b"--XyZ\r\n",
        b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--\r\n",
        f'--XyZ\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'.encode()
        + b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        + b"sku,price\r\nr-1,1\r\n",  # cut before its closing boundary
        f'--XyZ\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'.encode()
        + b"--XyZ\r\n"
        + b"X-Header: "
        + b"h" * 10_000
        + b"\r\n\r\nx\r\n--XyZ--\r\n",
        f'--XyZ\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'.encode()
        + b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="\xff.csv"\r\n\r\n'
        + b"x\r\n--XyZ--\r\n",
        f'--XyZ\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'.encode()
        + b'--XyZ\r\nContent-Disposition: form-data; name="big"\r\n\r\n'
        + b"b" * 100_000
        + b"\r\n--XyZ--\r\n",
    ):
        for content_type in (
            f"multipart/form-data; boundary={boundary}",
            "multipart/form-data",
            "multipart/mixed; boundary=XyZ",
        ):
            answer = await browser.post(path, content=raw, headers={"Content-Type": content_type})
            assert answer.status_code < 500, (raw[:80], content_type, answer.text[:500])


async def test_no_page_gives_a_5xx_for_any_query_or_path(
    admin: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    browser, ids = admin
    for route_path, method, _ in PAGES:
        if method != "GET":
            continue
        names = re.findall(r"{(\w+)}", route_path)
        choices = [[ids[n], *PATH_VALUES] for n in names] or [[]]
        for values in itertools.product(*choices):
            path = route_path
            for n, v in zip(names, values, strict=True):
                path = path.replace("{" + n + "}", v)
            for param, value in itertools.product(PAGE_PARAMS, PAGE_VALUES):
                answer = await browser.get("/portal" + path, params={param: value})
                assert answer.status_code < 500, (path, param, value, answer.text[:500])
