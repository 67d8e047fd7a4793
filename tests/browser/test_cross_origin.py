"""A page of another origin uses the API (issue 9, acceptance item 3).

The page's origin is listed in ENTREPOT_CORS_ORIGINS: its script reads a dataset
with ``fetch`` and a bearer header (so the browser preflights), reads the ETag the
API exposes, asks for a stream ticket and follows the feed with ``EventSource``,
receiving a change written after the stream opened. A page of an origin not on
the list gets nothing: the browser refuses its fetch.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ADMIN, WAIT_MS, Site
from tests.factories import unique

pytestmark = pytest.mark.browser

READ_AND_FOLLOW = """
async ({api, key, ds}) => {
  const headers = {Authorization: `Bearer ${key}`};
  const list = await fetch(`${api}/v1/datasets/${ds}/records?limit=10`, {headers});
  const one = await fetch(`${api}/v1/datasets/${ds}/records/w-1`, {headers});
  const asked = await fetch(`${api}/v1/datasets/${ds}/changes/tickets`,
                            {method: "POST", headers});
  const {url} = await asked.json();
  window.changes = [];
  await new Promise((opened, failed) => {
    const source = new EventSource(url);
    window.source = source;
    source.addEventListener("change", (e) => window.changes.push(JSON.parse(e.data)));
    source.onopen = () => opened();
    source.onerror = () => failed(new Error(`the stream failed: ${source.readyState}`));
  });
  return {
    listed: (await list.json()).data.map((r) => r.id),
    etag: one.headers.get("ETag"),
    record: (await one.json()).data,
    ticketStatus: asked.status,
  };
}
"""

REFUSED_FETCH = """
async ({api, key, ds}) => {
  try {
    await fetch(`${api}/v1/datasets/${ds}/records`, {headers: {Authorization: `Bearer ${key}`}});
    return "read";
  } catch (error) {
    return error.name;
  }
}
"""


@pytest.fixture
async def context(chromium: Any) -> AsyncIterator[Any]:
    context = await chromium.new_context()
    context.set_default_timeout(WAIT_MS)
    try:
        yield context
    finally:
        await context.close()


async def dataset(admin: httpx.AsyncClient) -> str:
    org = unique("org")
    assert (await admin.post("/v1/orgs", json={"name": org, "title": "Org"})).status_code == 201
    schema = {
        "type": "object",
        "properties": {"sku": {"type": "string"}, "price": {"type": "number"}},
        "required": ["sku"],
    }
    ds = unique("ds")
    created = await admin.post(
        "/v1/datasets",
        json={"name": ds, "org": org, "title": "Products", "schema": schema, "primary_key": "sku"},
    )
    assert created.status_code == 201, created.text
    put = await admin.put(f"/v1/datasets/{ds}/records/w-1", json={"sku": "w-1", "price": 9.5})
    assert put.status_code == 201, put.text
    return ds


async def test_an_allowed_origin_reads_and_follows_a_dataset(
    site: Site, admin: httpx.AsyncClient, context: Any
) -> None:
    ds = await dataset(admin)
    page = await context.new_page()
    await page.goto(f"{site.portal}/")
    seen = await page.evaluate(READ_AND_FOLLOW, {"api": site.api, "key": ADMIN, "ds": ds})
    assert seen == {
        "listed": ["w-1"],
        "etag": '"1"',
        "record": {"sku": "w-1", "price": 9.5},
        "ticketStatus": 200,
    }

    # Written once the stream is open: it arrives as an event.
    put = await admin.put(f"/v1/datasets/{ds}/records/w-2", json={"sku": "w-2", "price": 3})
    assert put.status_code == 201, put.text
    await page.wait_for_function("window.changes.some((c) => c.id === 'w-2')")
    changes = await page.evaluate("window.changes")
    assert [(c["seq"], c["id"]) for c in changes] == [(1, "w-1"), (2, "w-2")]
    await page.evaluate("window.source.close()")

    # The browser preflighted the bearer request, and the API allowed it.
    assert preflight_statuses(site, ds) == [200]


async def test_an_origin_not_on_the_list_is_refused_by_the_browser(
    site: Site, admin: httpx.AsyncClient, context: Any
) -> None:
    ds = await dataset(admin)
    page = await context.new_page()
    await page.goto(f"{site.stranger}/")
    outcome = await page.evaluate(REFUSED_FETCH, {"api": site.api, "key": ADMIN, "ds": ds})
    assert outcome == "TypeError"  # "Failed to fetch": the preflight was not allowed
    assert preflight_statuses(site, ds) == [400]  # the server answered, and refused


def preflight_statuses(site: Site, ds: str) -> list[int]:
    """The statuses the API's access log has for preflights of ``ds``'s records."""
    lines = [json.loads(x) for x in site.log.read_text().splitlines() if x.startswith("{")]
    return [
        line["status"]
        for line in lines
        if line.get("event") == "request"
        and line.get("method") == "OPTIONS"
        and line.get("path") == f"/v1/datasets/{ds}/records"
    ]


def sync_md_page() -> str:
    """The ```js block of docs/sync.md's "In a browser" section."""
    text = (Path(__file__).parents[2] / "docs" / "sync.md").read_text()
    section = text.split("## In a browser", 1)[1].split("\n## ", 1)[0]
    return section.split("```js\n", 1)[1].split("```", 1)[0]


async def test_the_page_in_the_docs_follows_a_feed(
    site: Site, admin: httpx.AsyncClient, context: Any
) -> None:
    ds = await dataset(admin)
    script = sync_md_page()
    for example, actual in (
        ('const api = "https://api.example.com";', f"const api = {json.dumps(site.api)};"),
        ('follow("products",', f"follow({json.dumps(ds)},"),
    ):
        assert example in script, example
        script = script.replace(example, actual)
    page = await context.new_page()
    logged: list[str] = []
    page.on("console", lambda message: logged.append(message.text))
    await page.goto(f"{site.portal}/")
    await page.add_script_tag(content=f"const token = {json.dumps(ADMIN)};\n{script}")
    await until(lambda: "1 upsert w-1" in logged, "the page's stream is open")
    put = await admin.put(f"/v1/datasets/{ds}/records/w-2", json={"sku": "w-2", "price": 3})
    assert put.status_code == 201, put.text
    await until(lambda: "2 upsert w-2" in logged, "the change written after it opened")
    await page.evaluate("stop()")
    assert logged == ["1 upsert w-1", "2 upsert w-2"]


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_MS} ms: {what}"
        await asyncio.sleep(0.05)
