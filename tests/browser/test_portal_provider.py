"""The provider's journey and the admin console in headless Chromium (issue 11, phase 2):
create a dataset with its schema checked as one types, import a file with one bad line
and read the report, approve a request with a field narrowing, revoke the grant, find
both in the audit log; a webhook and its delivery log; the console's pages. Every page
is checked by axe-core (serious or critical fails), and each main page is saved under
docs/screenshots (provider-*.png, admin-*.png; ENTREPOT_SCREENSHOTS=1).

The browsers are phase 1's (tests/browser/test_portal.py): offline but for the server,
every console error a failure.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.browser.axe import assert_accessible
from tests.browser.conftest import Site
from tests.browser.test_portal import SAVE_SHOTS, SHOTS, Browser, new_browser
from tests.e2e.test_webhook_delivery import Receiver
from tests.factories import make_app, make_org, unique
from tests.integration.portal_helpers import PASSWORD, make_person
from tests.waiting import until

pytestmark = pytest.mark.browser

SCHEMA = """{
  "type": "object",
  "required": ["sku", "price"],
  "properties": {
    "sku": {"type": "string", "description": "Stock keeping unit"},
    "price": {"type": "number", "minimum": 0, "description": "Unit price in euros"},
    "region": {"type": "string", "enum": ["eu", "us"]},
    "cost": {"type": "number", "description": "What the unit costs us"}
  }
}"""
CSV = (
    b"sku,price,region,cost\r\n"
    b"tulip-1,2.5,eu,1.1\r\n"
    b"tulip-2,not a price,eu,1.2\r\n"
    b"tulip-3,3,us,1.3\r\n"
)


async def shot(browser: Browser, name: str) -> None:
    if SAVE_SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await browser.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def provider(chromium: Any) -> AsyncIterator[Browser]:
    made = await new_browser(chromium)
    try:
        yield made
    finally:
        await made.context.close()
    assert made.outside == [], "a page asked for something beyond the server"
    assert made.console == [], f"errors on the browser's console: {made.console}"


async def _ask_for_access(admin: httpx.AsyncClient, dataset: str) -> str:
    """Another organisation's application asks for the dataset (as in the consumer journey)."""
    org = (await make_org(admin))["name"]
    app = await make_app(admin, org, scopes=["datasets:read", "records:read"])
    asked = await admin.post(
        f"/v1/datasets/{dataset}/access-requests",
        json={"app": app["id"], "scopes": ["datasets:read", "records:read"], "reason": "a shop"},
    )
    assert asked.status_code == 201, asked.text
    return str(app["id"])


async def test_the_provider_journey(
    site: Site, admin: httpx.AsyncClient, provider: Browser
) -> None:
    org = (await make_org(admin))["name"]
    owner = await make_person(admin, org)
    page = provider.page
    await provider.sign_in(site, owner)

    # Create a dataset: the schema is checked as it is typed.
    await provider.visit(f"{site.api}/portal/datasets")
    await page.get_by_role("link", name="Create a dataset").click()
    await page.get_by_role("heading", name="New dataset").wait_for()
    await assert_accessible(page)
    name = unique("flowers")
    await page.get_by_label("Name (in URLs)").fill(name)
    await page.get_by_label("Title").fill("Flower market prices")
    await page.get_by_label("Description").fill("Wholesale flower prices by region.")
    await page.get_by_label("Primary key").fill("sku")
    editor = page.get_by_label("JSON Schema (2020-12) of one record")
    await editor.fill('{"type": "object", "properties": {"sku": {"type": "strin"}}}')
    report = page.locator("#schema-check")
    await report.get_by_text("not a valid JSON Schema 2020-12 document").wait_for()
    await report.get_by_text("/schema/properties/sku/type").wait_for()
    await assert_accessible(page)
    await editor.fill(SCHEMA)
    await report.get_by_text("The schema is valid: 4 fields").wait_for()
    await report.get_by_text("An example record made from the schema").wait_for()
    await assert_accessible(page)
    await shot(provider, "provider-new-dataset")
    await page.get_by_role("button", name="Create the dataset").click()

    # Import a file with one bad line: the report names it.
    await page.get_by_text("is created").wait_for()
    await assert_accessible(page)
    await page.get_by_label("skip it, import the others").check()
    await page.get_by_label("File").set_input_files(
        {"name": "flowers.csv", "mimeType": "text/csv", "buffer": CSV}
    )
    await shot(provider, "provider-import")
    await page.get_by_role("button", name="Import").click()
    errors = page.locator("#import-errors")
    await errors.wait_for()
    assert await page.get_by_role("progressbar").count() == 0  # the report replaced the form
    rows = await errors.locator("tbody tr").all_inner_texts()
    assert [re.split(r"\s+", r.strip(), maxsplit=2)[:2] for r in rows] == [["3", "/price"]]
    assert "Imported: 2 new records, 0 replaced; 1 line skipped." in await page.inner_text("main")
    await assert_accessible(page)
    await shot(provider, "provider-import-report")
    listed = await admin.get(f"/v1/datasets/{name}/records")
    assert sorted(r["id"] for r in listed.json()["data"]) == ["tulip-1", "tulip-3"]

    # Approve a request without the cost field, then revoke the grant.
    await _ask_for_access(admin, name)
    await provider.visit(f"{site.api}/portal/approvals")
    request = page.locator("article", has_text=name)
    await request.get_by_label("Only the fields ticked below").check()
    await request.get_by_label("cost").uncheck()
    await request.get_by_role("button", name="Approve").click()
    grants = page.locator("#grants + table")
    await grants.get_by_text("sku, price, region").wait_for()
    await grants.get_by_role("button", name=re.compile(f"Revoke the grant of {name}")).click()
    await page.get_by_text("No grant in force.").wait_for()

    # Both are in the audit log, found by the dataset's name.
    await provider.visit(f"{site.api}/portal/audit")
    await page.get_by_label("Dataset").fill(name)
    await page.get_by_role("button", name="Show").click()
    table = page.locator("#audit-rows")
    await table.wait_for()
    actions = await table.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert actions.index("grant.revoked") < actions.index("grant.created")  # newest first
    assert "records.imported" in actions
    assert "dataset.created" in actions
    await assert_accessible(page)
    await shot(provider, "provider-audit")

    # The edit page checks the stored records against the schema.
    await provider.visit(f"{site.api}/portal/datasets/{name}/edit")
    await page.get_by_text("The first stored records, checked against this schema").wait_for()
    await shot(provider, "provider-edit-dataset")
    await provider.visit(f"{site.api}/portal/datasets")
    await shot(provider, "provider-datasets")


async def test_a_webhook_and_its_delivery_log(
    site: Site, admin: httpx.AsyncClient, provider: Browser
) -> None:
    org = (await make_org(admin))["name"]
    ds = unique("tulips")
    made = await admin.post(
        "/v1/datasets",
        json={
            "name": ds,
            "org": org,
            "title": "Tulips",
            "primary_key": "sku",
            "schema": {"type": "object", "properties": {"sku": {"type": "string"}}},
        },
    )
    assert made.status_code == 201, made.text
    await make_app(
        admin, org, name="shopfront", scopes=["datasets:read", "records:read", "changes:read"]
    )
    receiver = Receiver()
    try:
        await provider.sign_in(site, await make_person(admin, org))
        page = provider.page
        await provider.visit(f"{site.api}/portal/webhooks")
        await page.get_by_label("URL receiving the POSTs").fill(receiver.url)
        await page.get_by_label("Datasets followed").fill(ds)
        await shot(provider, "provider-webhooks")
        await page.get_by_role("button", name="Add the webhook").click()
        secret = await page.get_by_label("Signing secret").input_value()
        assert secret.startswith("whsec_")
        await assert_accessible(page)
        receiver.secrets.append(secret)
        await page.get_by_role("link", name="Back to the webhook").click()
        await page.get_by_role("heading", name=re.compile("Webhook to")).wait_for()
        put = await admin.put(f"/v1/datasets/{ds}/records/t-1", json={"sku": "t-1"})
        assert put.status_code == 201, put.text

        async def delivered() -> bool:
            await page.reload()
            return await page.locator("#delivery-log .badge", has_text="delivered").count() > 0

        await until(delivered, "the delivery log shows the delivery")
        assert secret not in await page.content()
        await assert_accessible(page)
        await shot(provider, "provider-webhook")
        await page.get_by_role("button", name=re.compile("^Retry")).first.click()
        await page.get_by_text("The delivery is queued again").wait_for()
        await assert_accessible(page)
    finally:
        receiver.close()


async def test_the_admin_console(site: Site, admin: httpx.AsyncClient, chromium: Any) -> None:
    org = (await make_org(admin))["name"]
    operator = await new_browser(chromium)
    outsider = await new_browser(chromium)
    try:
        await operator.sign_in(site, await make_person(admin, org, is_platform_admin=True))
        page = operator.page
        await page.get_by_role("link", name="Admin console").click()
        await page.get_by_role("heading", name="Platform health").wait_for()
        await assert_accessible(page)
        assert "This replica is ready." in await page.inner_text("main")
        await shot(operator, "admin-health")

        await page.get_by_role("link", name="Plans", exact=True).click()
        plan = unique("gold")
        await page.get_by_label("Name", exact=True).fill(plan)
        await page.get_by_label("Requests per second").fill("50")
        await page.get_by_label("Burst (requests at once)").fill("100")
        await page.get_by_role("button", name="Create the plan").click()
        await page.get_by_role("rowheader", name=plan).wait_for()
        await assert_accessible(page)
        await shot(operator, "admin-plans")

        await operator.visit(f"{site.api}/portal/admin/orgs")
        await shot(operator, "admin-orgs")
        await operator.visit(f"{site.api}/portal/admin/users")
        await shot(operator, "admin-users")

        # Anyone else: the 403 page, itself accessible.
        await outsider.sign_in(site, await make_person(admin, org))
        answer = await outsider.page.goto(f"{site.api}/portal/admin")
        assert answer is not None
        assert answer.status == 403
        await outsider.page.get_by_text("Only platform administrators may do this.").wait_for()
        await assert_accessible(outsider.page)
    finally:
        await operator.context.close()
        await outsider.context.close()
    for each in (operator, outsider):
        assert each.outside == []
        assert each.console == [], each.console


async def test_an_import_works_without_javascript(
    site: Site, admin: httpx.AsyncClient, chromium: Any
) -> None:
    org = (await make_org(admin))["name"]
    ds = unique("bulbs")
    made = await admin.post(
        "/v1/datasets",
        json={
            "name": ds,
            "org": org,
            "title": "Bulbs",
            "primary_key": "sku",
            "schema": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "n": {"type": "integer"}},
            },
        },
    )
    assert made.status_code == 201, made.text
    plain = await new_browser(chromium, java_script_enabled=False)
    try:
        email = await make_person(admin, org)
        await plain.page.goto(f"{site.api}/portal/datasets/{ds}/import")
        await plain.page.get_by_label("Email").fill(email)  # sent there by the sign-in page
        await plain.page.get_by_label("Password").fill(PASSWORD)
        await plain.page.get_by_role("button", name="Sign in").click()
        await plain.page.get_by_label("File").set_input_files(
            {
                "name": "bulbs.ndjson",
                "mimeType": "application/x-ndjson",
                "buffer": b'{"sku": "b-1", "n": 1}\n{"sku": "b-2", "n": "many"}\n',
            }
        )
        await plain.page.get_by_role("button", name="Import").click()
        await plain.page.get_by_role("heading", name=re.compile("Import report")).wait_for()
        text = await plain.page.inner_text("main")
        assert "nothing was imported" in text  # all or nothing, the default
        assert "/n" in await plain.page.locator("#import-errors").inner_text()
    finally:
        await plain.context.close()
    assert plain.outside == []
