"""The portal in headless Chromium (issue 11): the consumer's journey end to end, with
the provider approving in a second browser context; every page checked by axe-core
for serious or critical violations; a screenshot of each main page for docs/portal.md;
and the pages used with JavaScript off.

Every request a page makes must be answered by the server itself (anything else is
aborted and fails the test), and the browser must report no error on its console (a
CSP violation is one).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.axe import assert_accessible, serve_axe
from tests.browser.conftest import WAIT_MS, Site
from tests.factories import make_org, unique
from tests.integration.portal_helpers import PASSWORD, make_person

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
# Screenshots are rewritten when asked (ENTREPOT_SCREENSHOTS=1), not on every run.
SAVE_SHOTS = bool(os.environ.get("ENTREPOT_SCREENSHOTS"))
SCHEMA = {
    "type": "object",
    "required": ["sku", "price"],
    "properties": {
        "sku": {"type": "string", "description": "Stock keeping unit"},
        "price": {"type": "number", "minimum": 0, "description": "Unit price in euros"},
        "region": {"type": "string", "enum": ["eu", "us"]},
        "cost": {"type": "number", "description": "What the unit costs us"},
    },
}


@dataclass
class Browser:
    """A context of its own (its own cookies), offline but for the server, watched."""

    context: Any
    page: Any
    outside: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def on_console(self, message: Any) -> None:
        # A page answered 4xx on purpose (a hidden dataset) is logged as a failed load:
        # statuses are checked in on_response instead, for everything but documents.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.console.append(message.text)

    def on_response(self, response: Any) -> None:
        if response.request.resource_type != "document" and response.status >= 400:
            self.console.append(f"{response.status} for {response.url}")

    async def visit(self, url: str) -> None:
        await self.page.goto(url)
        await assert_accessible(self.page)

    async def shot(self, name: str) -> None:
        if SAVE_SHOTS:
            SHOTS.mkdir(parents=True, exist_ok=True)
            await self.page.screenshot(path=str(SHOTS / f"portal-{name}.png"), full_page=True)

    async def sign_in(self, site: Site, email: str) -> None:
        await self.visit(f"{site.api}/portal/")
        await self.page.get_by_label("Email").fill(email)
        await self.page.get_by_label("Password").fill(PASSWORD)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.get_by_role("heading", name=re.compile("Welcome")).wait_for()


async def new_browser(chromium: Any, **options: Any) -> Browser:
    context = await chromium.new_context(viewport={"width": 1280, "height": 800}, **options)
    context.set_default_timeout(WAIT_MS)
    watched = Browser(context, await context.new_page())

    async def only_ours(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            watched.outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_ours)
    await serve_axe(context)
    watched.page.on("console", watched.on_console)
    watched.page.on("response", watched.on_response)
    return watched


@pytest.fixture
async def browsers(chromium: Any) -> AsyncIterator[tuple[Browser, Browser]]:
    consumer = await new_browser(chromium)
    provider = await new_browser(chromium)
    try:
        yield consumer, provider
    finally:
        await consumer.context.close()
        await provider.context.close()
    for each in (consumer, provider):
        assert each.outside == [], "a page asked for something beyond the server"
        assert each.console == [], f"errors on the browser's console: {each.console}"


@dataclass
class World:
    dataset: str
    provider: str
    consumer: str
    eu: str
    us: str


async def world(admin: httpx.AsyncClient) -> World:
    provider_org, consumer_org = unique("acme"), unique("shopco")
    for org, title in ((provider_org, "Acme Wholesale"), (consumer_org, "ShopCo")):
        made = await admin.post("/v1/orgs", json={"name": org, "title": title})
        assert made.status_code == 201, made.text
    ds = unique("prices")
    made = await admin.post(
        "/v1/datasets",
        json={
            "name": ds,
            "org": provider_org,
            "title": "Wholesale prices",
            "description": "Prices of our products by region, updated hourly.",
            "schema": SCHEMA,
            "primary_key": "sku",
            "visibility": "restricted",
            "tags": ["prices", "retail"],
        },
    )
    assert made.status_code == 201, made.text
    eu, us = unique("eu"), unique("us")
    for sku, region, price in ((eu, "eu", 12.5), (us, "us", 14)):
        put = await admin.put(
            f"/v1/datasets/{ds}/records/{sku}",
            json={"sku": sku, "price": price, "region": region, "cost": 9.75},
        )
        assert put.status_code == 201, put.text
    return World(
        ds,
        await make_person(admin, provider_org),
        await make_person(admin, consumer_org),
        eu,
        us,
    )


async def test_the_consumer_journey(
    site: Site, admin: httpx.AsyncClient, browsers: tuple[Browser, Browser]
) -> None:
    consumer, provider = browsers
    w = await world(admin)
    page = consumer.page

    # Sign in.
    await consumer.visit(f"{site.api}/portal/sign-in")
    await consumer.shot("sign-in")
    await consumer.sign_in(site, w.consumer)
    await consumer.shot("home")

    # Register an application: its client secret is shown once.
    await consumer.visit(f"{site.api}/portal/apps")
    await page.get_by_label("Name", exact=True).fill("storefront")
    await page.get_by_role("button", name="Register").click()
    await page.get_by_text("shown only on this page").wait_for()
    await assert_accessible(page)
    await page.get_by_role("link", name="Back to storefront").click()
    app_url = page.url
    await assert_accessible(page)

    # Find the dataset (restricted: found by the name its provider gave) and ask.
    await consumer.visit(f"{site.api}/portal/catalog")
    await page.get_by_label("Dataset name").fill(w.dataset)
    await page.get_by_role("button", name="Open").click()
    await page.get_by_text("does not exist or is not visible to you").wait_for()
    await assert_accessible(page)
    await page.get_by_label("Why you need it").fill("Show prices in the shop")
    await consumer.shot("request-access")
    await page.get_by_role("button", name="Send the request").click()
    await page.get_by_role("heading", name="Access requests").wait_for()
    await assert_accessible(page)
    assert await page.locator(".badge.pending").count() == 1

    # The provider approves in a browser of its own, without the cost field, EU only.
    await provider.sign_in(site, w.provider)
    await provider.visit(f"{site.api}/portal/approvals")
    request = provider.page.locator("article", has_text=w.dataset)
    await request.get_by_label("Only the fields ticked below").check()
    await request.get_by_label("cost").uncheck()
    await request.get_by_label("Rows it sees").fill('{"region": "eu"}')
    await request.get_by_label("Note to the requester").fill("EU only for now")
    await provider.shot("approvals")
    await request.get_by_role("button", name="Approve").click()
    await provider.page.get_by_role("heading", name="Grants in force").wait_for()
    await assert_accessible(provider.page)
    grants = provider.page.locator("#grants + table")
    await grants.get_by_text("sku, price, region").wait_for()

    await page.reload()
    assert await page.locator(".badge.approved").count() == 1
    await consumer.shot("requests")

    # The dataset as the application sees it: no cost, no US row, no counts.
    await consumer.visit(f"{site.api}/portal/catalog/{w.dataset}")
    await page.get_by_label("See it as").select_option(label="the application storefront")
    await page.get_by_role("button", name="Show").click()
    await page.get_by_text("Shown as the application").wait_for()
    await assert_accessible(page)
    text = await page.locator("main").inner_text()
    assert w.eu in text
    assert w.us not in text
    assert "cost" not in text
    assert "9.75" not in text
    await consumer.shot("dataset")

    # A key: shown once, copied with the button.
    await consumer.visit(app_url)
    await page.get_by_label("New key name").fill("production")
    await page.get_by_role("button", name="Create a key").click()
    secret = await page.get_by_label("API key").input_value()
    assert secret.startswith("ent_")
    await assert_accessible(page)
    await consumer.shot("new-key")
    await page.get_by_role("button", name="Copy").click()
    await page.get_by_text("Copied to the clipboard.").wait_for()

    # The first API call with it.
    async with httpx.AsyncClient(
        base_url=site.api, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    ) as api:
        listed = await api.get(f"/v1/datasets/{w.dataset}/records")
    assert listed.status_code == 200, listed.text
    assert [(r["id"], sorted(r["data"])) for r in listed.json()["data"]] == [
        (w.eu, ["price", "region", "sku"])
    ]

    # ... in the usage chart, and the secret nowhere any more.
    await consumer.visit(app_url)
    counts = [
        int(n)
        for n in await page.locator("svg rect.bar").evaluate_all(
            "(bars) => bars.map((b) => b.dataset.count)"
        )
    ]
    assert sum(counts) >= 1
    assert secret not in await page.content()
    assert secret[:12] in await page.locator("#snippet-curl").inner_text()
    assert w.dataset in await page.locator("#snippet-python").inner_text()
    await consumer.shot("app")

    await consumer.visit(f"{site.api}/portal/account")
    await consumer.shot("account")


async def test_the_catalogue_search_updates_as_one_types(
    site: Site, admin: httpx.AsyncClient, browsers: tuple[Browser, Browser]
) -> None:
    consumer, _ = browsers
    org = (await make_org(admin))["name"]
    word = unique("tulips").replace("-", "")
    made = await admin.post(
        "/v1/datasets",
        json={
            "name": unique("flowers"),
            "org": org,
            "title": f"Flower market {word}",
            "schema": SCHEMA,
            "primary_key": "sku",
            "visibility": "public",
        },
    )
    assert made.status_code == 201, made.text
    await consumer.sign_in(site, await make_person(admin, org))
    await consumer.visit(f"{site.api}/portal/catalog")
    await consumer.page.get_by_label("Search datasets").press_sequentially(word)
    # No button pressed: htmx asked as one typed, and swapped the results in.
    await consumer.page.get_by_text(f"1 dataset matching “{word}”").wait_for()
    await consumer.page.locator("#results", has_text=f"Flower market {word}").wait_for()
    await consumer.page.wait_for_url(re.compile(f"q={word}$"))  # shareable, as typed
    await assert_accessible(consumer.page)
    await consumer.shot("catalogue")


async def test_the_pages_work_without_javascript(
    site: Site, admin: httpx.AsyncClient, chromium: Any
) -> None:
    plain = await new_browser(chromium, java_script_enabled=False)
    try:
        email = await make_person(admin, (await make_org(admin))["name"])
        await plain.page.goto(f"{site.api}/portal/sign-in")
        await plain.page.get_by_label("Email").fill(email)
        await plain.page.get_by_label("Password").fill(PASSWORD)
        await plain.page.get_by_role("button", name="Sign in").click()
        await plain.page.get_by_role("heading", name=re.compile("Welcome")).wait_for()
        await plain.page.goto(f"{site.api}/portal/catalog?q=nothing-matches-this")
        await plain.page.get_by_text("No dataset you may see matches").wait_for()
        await plain.page.get_by_role("button", name="Sign out").click()
        await plain.page.get_by_role("heading", name="Sign in").wait_for()
    finally:
        await plain.context.close()
    assert plain.outside == []
