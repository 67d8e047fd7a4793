"""The portal's dataset page shows what the API now stores (issue 11): the licence and
contact a provider gives, the dataset's usage (every app's for its provider, your own
apps' for anyone else); and the approvals inbox names the app that asks."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import make_app, make_dataset, make_key, make_org
from tests.integration.portal_helpers import make_person, sign_in

READER = ["datasets:read", "records:read"]


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as b:
        yield b


def usage_total(html: str) -> int:
    return sum(int(n) for n in re.findall(r'data-count="(\d+)"', html))


def apps_table(html: str) -> dict[str, int]:
    found = re.search(r'<table id="ds-usage-apps">(.*?)</table>', html, re.S)
    if found is None:
        return {}
    return {
        app: int(n)
        for app, n in re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", found.group(1))
    }


async def test_the_licence_and_contact_are_shown(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    given = await make_dataset(
        client,
        org=org,
        license="CC-BY-4.0",
        license_url="https://creativecommons.org/licenses/by/4.0/",
        contact={"name": "Data <team>", "email": "data@example.org"},
    )
    bare = await make_dataset(client, org=org)
    await sign_in(browser, await make_person(client, (await make_org(client))["name"]))

    page = (await browser.get(f"/portal/catalog/{given['name']}")).text
    assert (
        '<a href="https://creativecommons.org/licenses/by/4.0/" rel="license noopener">'
        "CC-BY-4.0</a>"
    ) in page
    assert 'Data &lt;team&gt;, <a href="mailto:data@example.org">data@example.org</a>' in page
    assert "does not record them" not in page

    plain = (await browser.get(f"/portal/catalog/{bare['name']}")).text
    assert re.search(r'<dd id="licence">not given: ask the provider, ' + org, plain)
    assert '<dd id="contact">not given</dd>' in plain


async def test_usage_of_a_dataset_for_its_provider_and_for_a_consumer(
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    app: FastAPI,
) -> None:
    provider = (await make_org(client))["name"]
    ds = (await make_dataset(client, org=provider))["name"]
    consumer = (await make_org(client))["name"]
    mine = await make_app(client, consumer, scopes=READER)
    theirs = await make_app(client, (await make_org(client))["name"], scopes=READER)
    for made, times in ((mine, 2), (theirs, 3)):
        key = (await make_key(client, made["id"]))["key"]
        for _ in range(times):
            got = await anon.get(
                f"/v1/datasets/{ds}/records", headers={"Authorization": f"Bearer {key}"}
            )
            assert got.status_code == 200, got.text

    await sign_in(browser, await make_person(client, provider))
    as_provider = (await browser.get(f"/portal/catalog/{ds}")).text
    assert "Every application's requests to this dataset." in as_provider
    assert usage_total(as_provider) == 5
    assert apps_table(as_provider) == {theirs["id"]: 3, mine["id"]: 2}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await sign_in(other, await make_person(client, consumer))
        as_consumer = (await other.get(f"/portal/catalog/{ds}")).text
    assert "Your organisation's applications' requests to this dataset." in as_consumer
    assert usage_total(as_consumer) == 2
    assert apps_table(as_consumer) == {mine["name"]: 2}
    assert theirs["id"] not in as_consumer


async def test_the_approvals_inbox_names_the_app_and_its_organisation(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    provider = (await make_org(client))["name"]
    ds = (await make_dataset(client, org=provider, visibility="restricted"))["name"]
    consumer = (await make_org(client))["name"]
    asking = await make_app(client, consumer, scopes=READER)
    key = (await make_key(client, asking["id"]))["key"]
    asked = await anon.post(
        f"/v1/datasets/{ds}/access-requests",
        json={"app": asking["id"], "scopes": READER, "reason": "a shop"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert asked.status_code == 201, asked.text

    await sign_in(browser, await make_person(client, provider))
    inbox = (await browser.get("/portal/approvals")).text
    assert f"<code>{ds}</code> for {asking['name']} of {consumer}</h3>" in inbox
    assert asking["client_id"] not in inbox  # who it is, not its credentials
