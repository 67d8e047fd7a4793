"""Every GET page of the portal checked by axe-core (issue 11, acceptance 3: no serious
or critical violation on any page), and read again with JavaScript off.

The pages come from the portal's own route table (portal/routes.py and
portal/console_routes.py), not from a list kept by hand: a GET route this test neither
visits nor excludes below, with its reason, fails it. So a new page cannot ship
without its axe check.

One small world is made through the API first: a provider who is a platform
administrator (owner of one organisation, member of a second, so the header shows
the organisation switcher), a dataset with records, a licence and a contact, an app
with a key that has called the API (the usage charts have a bar), a grant and pending
access requests, a webhook with a delivery, and an import report (made in the
browser). Each page is then visited in two contexts signed in as the same person:
one with JavaScript (axe runs there), one without (the page's main heading must be
the same: the portal is readable without scripts).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from starlette.routing import Route

from entrepot.portal import routes as portal_routes
from tests.browser.axe import assert_accessible
from tests.browser.conftest import Site
from tests.browser.test_portal import SCHEMA, Browser, new_browser
from tests.e2e.test_webhook_delivery import Receiver
from tests.factories import make_app, make_key, unique
from tests.integration.portal_helpers import PASSWORD, make_person
from tests.waiting import until

pytestmark = pytest.mark.browser

# The GET routes no page visit below covers, and why. Anything added here needs a reason.
EXCLUDED = {
    # The pages' CSS and scripts (and axe itself, answered by the test's context): assets,
    # not pages; every visit below loads them.
    "/portal/static/{name}": "assets",
    # The first-run page is served only on a platform with no account yet (here it
    # redirects to the sign-in page): tests/browser/test_portal_setup.py runs axe on it,
    # empty and with its refusals beside the fields, on a server of its own.
    "/portal/setup": "covered by test_portal_setup.py",
    # A download (application/x-ndjson), not a page: checked below to answer one.
    "/portal/audit/export": "a download",
}
CSV = (
    b"sku,price,region,cost\r\n"
    b"rose-1,2.5,eu,1.1\r\n"
    b"rose-2,not a price,eu,1.2\r\n"
    b"rose-3,3,us,1.3\r\n"
)


def get_routes() -> list[Route]:
    """The portal's GET routes, in the order Starlette matches them."""
    return [
        r
        for r in portal_routes.routes()
        if isinstance(r, Route) and r.methods is not None and "GET" in r.methods
    ]


def route_of(url: str, table: list[Route]) -> str:
    """The route (as its path template, ``/portal/...``) Starlette would answer ``url`` with."""
    path = urlsplit(url).path
    assert path.startswith(portal_routes.PREFIX), url
    relative = path[len(portal_routes.PREFIX) :] or "/"
    for route in table:  # the first match wins, as in Starlette
        if route.path_regex.match(relative):
            return route.path
    raise AssertionError(f"{url} matches no GET route of the portal")


@dataclass(frozen=True)
class World:
    provider: str  # email: platform admin, owner of `org`, member of `other`
    outsider: str  # email: a plain member of `org`
    org: str
    other: str
    dataset: str  # of `org`: records, licence, contact, a grant, a pending request
    theirs: str  # of `other`, restricted: `app` asked for it
    app: str  # an app of `org` with a key that called the API, and a webhook
    hook: str


async def make_world(admin: httpx.AsyncClient, receiver: Receiver) -> World:
    org, other = unique("acme"), unique("shopco")  # "acme" < "shopco": `org` is current
    for name, title in ((org, "Acme Wholesale"), (other, "ShopCo")):
        made = await admin.post("/v1/orgs", json={"name": name, "title": title})
        assert made.status_code == 201, made.text
    provider = await make_person(admin, org, is_platform_admin=True)
    joined = await admin.post(
        f"/v1/orgs/{other}/members", json={"email": provider, "role": "member"}
    )
    assert joined.status_code == 201, joined.text
    outsider = await make_person(admin, org, role="member")

    ds, theirs = unique("roses"), unique("tulips")
    for name, owner, title in ((ds, org, "Rose prices"), (theirs, other, "Tulip prices")):
        made = await admin.post(
            "/v1/datasets",
            json={
                "name": name,
                "org": owner,
                "title": title,
                "description": "Wholesale prices by region, updated hourly.",
                "schema": SCHEMA,
                "primary_key": "sku",
                "visibility": "restricted",
                "tags": ["prices", "flowers"],
                "license": "CC-BY-4.0",
                "license_url": "https://creativecommons.org/licenses/by/4.0/",
                "contact": {"name": "Data desk", "email": "data@example.test"},
            },
        )
        assert made.status_code == 201, made.text
    for sku, region, price in (("eu-1", "eu", 12.5), ("us-1", "us", 14)):
        put = await admin.put(
            f"/v1/datasets/{ds}/records/{sku}",
            json={"sku": sku, "price": price, "region": region, "cost": 9.75},
        )
        assert put.status_code == 201, put.text

    scopes = ["datasets:read", "records:read", "changes:read"]
    app = await make_app(admin, org, name="storefront", scopes=scopes)
    key = (await make_key(admin, app["id"]))["key"]
    async with httpx.AsyncClient(
        base_url=str(admin.base_url), headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as api:
        read = await api.get(f"/v1/datasets/{ds}/records")  # a bar in the usage charts
    assert read.status_code == 200, read.text

    # Access: a grant (narrowed) and a pending request on `ds`; `app` asks for `theirs`.
    granted = await make_app(admin, other, scopes=scopes[:2])
    pending = await make_app(admin, other, scopes=scopes[:2])
    asks = [(granted["id"], ds), (pending["id"], ds), (app["id"], theirs)]
    made_ids = []
    for app_id, dataset in asks:
        asked = await admin.post(
            f"/v1/datasets/{dataset}/access-requests",
            json={"app": app_id, "scopes": scopes[:2], "reason": "prices in the shop"},
        )
        assert asked.status_code == 201, asked.text
        made_ids.append(asked.json()["id"])
    approved = await admin.post(
        f"/v1/access-requests/{made_ids[0]}/approve", json={"fields": ["sku", "price", "region"]}
    )
    assert approved.status_code == 200, approved.text

    # A webhook of `app` following `ds`, with one delivery delivered.
    hook = await admin.post(
        f"/v1/apps/{app['id']}/webhooks", json={"url": receiver.url, "datasets": [ds]}
    )
    assert hook.status_code == 201, hook.text
    receiver.secrets.append(hook.json()["secret"])
    put = await admin.put(
        f"/v1/datasets/{ds}/records/eu-2", json={"sku": "eu-2", "price": 1, "region": "eu"}
    )
    assert put.status_code == 201, put.text

    async def delivered() -> bool:
        found = await admin.get(f"/v1/webhooks/{hook.json()['id']}/deliveries")
        return any(d["status"] == "delivered" for d in found.json()["data"])

    await until(delivered, "the webhook's delivery is delivered")
    return World(provider, outsider, org, other, ds, theirs, app["id"], hook.json()["id"])


@dataclass
class Pair:
    """One person in two browsers: with JavaScript (axe runs there) and without."""

    js: Browser
    plain: Browser

    async def sign_in(self, site: Site, email: str) -> None:
        await self.js.sign_in(site, email)
        page = self.plain.page
        await page.goto(f"{site.api}/portal/sign-in")
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("heading", name=re.compile("Welcome")).wait_for()

    async def check(self, site: Site, path: str, status: int = 200) -> None:
        """Visit ``path`` in both: the status, axe with scripts, the same main heading without."""
        url = f"{site.api}{path}"
        answer = await self.js.page.goto(url)
        assert answer is not None
        assert answer.status == status, f"{path}: {answer.status}"
        heading = self.js.page.locator("main h1")
        assert await heading.count() == 1, f"{path}: one main heading"
        text = (await heading.inner_text()).strip()
        assert text, f"{path}: an empty heading"
        await assert_accessible(self.js.page)

        plain = await self.plain.page.goto(url)
        assert plain is not None
        assert plain.status == status, f"{path} without JavaScript: {plain.status}"
        shown = self.plain.page.locator("main h1")
        assert await shown.is_visible(), f"{path}: no main heading without JavaScript"
        assert (await shown.inner_text()).strip() == text, path


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    try:
        yield made
    finally:
        made.close()


async def pair_of(chromium: Any) -> Pair:
    return Pair(await new_browser(chromium), await new_browser(chromium, java_script_enabled=False))


async def test_every_portal_page_is_accessible_with_and_without_javascript(
    site: Site, admin: httpx.AsyncClient, chromium: Any, receiver: Receiver
) -> None:
    w = await make_world(admin, receiver)
    table = get_routes()
    provider, outsider = await pair_of(chromium), await pair_of(chromium)
    visited: list[str] = []

    async def check(who: Pair, path: str, status: int = 200) -> None:
        await who.check(site, path, status)
        visited.append(path)

    try:
        # Signed out: the sign-in page (every signed-in page sends there first).
        await check(provider, "/portal/sign-in")
        await check(provider, "/portal/sign-in?next=" + quote("/portal/apps", safe=""))
        await provider.sign_in(site, w.provider)
        await outsider.sign_in(site, w.outsider)

        # The import report (a POST's page), for the audit log and for axe.
        page = provider.js.page
        await page.goto(f"{site.api}/portal/datasets/{w.dataset}/import")
        await page.get_by_label("skip it, import the others").check()
        await page.get_by_label("File").set_input_files(
            {"name": "roses.csv", "mimeType": "text/csv", "buffer": CSV}
        )
        await page.get_by_role("button", name="Import").click()
        await page.locator("#import-errors").wait_for()
        await assert_accessible(page)

        missing = str(uuid.uuid4())
        for path, status in [
            ("/portal/", 200),
            ("/portal/account", 200),
            ("/portal/catalog", 200),
            ("/portal/catalog?q=rose", 200),
            ("/portal/catalog?q=nothing-matches-this", 200),
            ("/portal/catalog?tag=flowers", 200),
            (f"/portal/catalog/lookup?name={w.dataset}", 200),  # sent to the dataset's page
            ("/portal/catalog/lookup?name=Not+a+name", 400),  # the error page
            (f"/portal/catalog/{w.dataset}", 200),
            (f"/portal/catalog/{w.dataset}?app={w.app}", 200),  # seen as the application
            (f"/portal/catalog/{w.theirs}", 200),  # another organisation's
            ("/portal/catalog/no-such-dataset", 404),  # the request form of a hidden one
            ("/portal/requests", 200),
            ("/portal/approvals", 200),
            ("/portal/apps", 200),
            (f"/portal/apps/{w.app}", 200),
            (f"/portal/apps/{missing}", 404),  # the 404 page
            ("/portal/datasets", 200),
            ("/portal/datasets/new", 200),
            (f"/portal/datasets/{w.dataset}/edit", 200),
            (f"/portal/datasets/{w.dataset}/import", 200),
            (f"/portal/datasets/{w.dataset}/import?created=1", 200),
            ("/portal/audit", 200),
            (f"/portal/audit?dataset={w.dataset}", 200),
            ("/portal/audit?outcome=bogus&since=yesterday", 400),  # refused beside the fields
            ("/portal/webhooks", 200),
            (f"/portal/webhooks/{w.hook}", 200),
            (f"/portal/webhooks/{w.hook}?status=delivered&done=retried", 200),
            ("/portal/admin", 200),
            ("/portal/admin/plans", 200),
            ("/portal/admin/orgs", 200),
            ("/portal/admin/users", 200),
        ]:
            await check(provider, path, status)

        # A plain member: a narrower menu, and the console's 403 page.
        for path, status in [
            ("/portal/", 200),
            ("/portal/approvals", 200),
            (f"/portal/datasets/{w.dataset}/edit", 403),
            ("/portal/admin", 403),
            ("/portal/admin/users", 403),
        ]:
            await check(outsider, path, status)

        # The export is a download, not a page: it answers NDJSON.
        exported = await provider.js.context.request.get(
            f"{site.api}/portal/audit/export?dataset={w.dataset}"
        )
        assert exported.status == 200
        assert exported.headers["content-type"].startswith("application/x-ndjson")
    finally:
        for each in (provider, outsider):
            await each.js.context.close()
            await each.plain.context.close()

    for each in (provider, outsider):
        for browser in (each.js, each.plain):
            assert browser.outside == [], "a page asked for something beyond the server"
            assert browser.console == [], f"errors on the browser's console: {browser.console}"

    covered = {route_of(path, table) for path in visited}
    every = {route.path for route in table}
    assert not covered & EXCLUDED.keys(), "a route both visited and excluded"
    assert EXCLUDED.keys() <= every, "an exclusion names no route any more"
    unchecked = sorted(every - covered - EXCLUDED.keys())
    assert unchecked == [], f"GET pages without an axe check (visit them here): {unchecked}"
