"""What the provider and console suites share: an app that lets webhooks reach loopback
receivers, signed-in browsers, and a multipart upload as a browser sends one."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html import unescape
from typing import Any

import httpx
from fastapi import FastAPI

from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN, app_and_client, prepared_database
from tests.integration.portal_helpers import csrf_of, sign_in

BASE = "http://testserver"


@dataclass
class Console:
    app: FastAPI
    admin: httpx.AsyncClient  # the bootstrap key, over the API

    @asynccontextmanager
    async def browser(self, email: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
        """A browser of its own (its own cookies), signed in as ``email`` when given."""
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
            if email is not None:
                await sign_in(browser, email)
            yield browser


@asynccontextmanager
async def console_app(fresh_database: Callable[[], Awaitable[str]]) -> AsyncIterator[Console]:
    settings = Settings(
        database_url=await prepared_database(fresh_database),
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        max_body_bytes=256 * 1024,
        auth_failures_burst=10_000_000,
        webhook_allowed_networks="127.0.0.0/8",
        webhook_retry_schedule="0,0.2,0.2",
        webhook_timeout_seconds=5,
    )
    async with app_and_client(settings) as (application, client):
        await client.patch("/v1/plans/default", json={"rate_per_second": 1e6, "burst": 1000000})
        yield Console(application, client)


async def token_of(browser: httpx.AsyncClient, page: str = "/portal/") -> str:
    shown = await browser.get(page)
    assert shown.status_code == 200, shown.text
    return csrf_of(shown.text)


async def upload(
    browser: httpx.AsyncClient,
    dataset: str,
    content: bytes,
    *,
    filename: str = "records.csv",
    token: str | None = None,
    **fields: str,
) -> httpx.Response:
    """Send the import form as a browser does: its fields first, the file last."""
    if token is None:
        token = await token_of(browser, f"/portal/datasets/{dataset}/import")
    data = {"csrf_token": token, **fields}
    files = {"file": (filename, content, "application/octet-stream")}
    return await browser.post(f"/portal/datasets/{dataset}/import", data=data, files=files)


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the page:\n{text[:3000]}"
    return match.group(1)


def page_text(html: str) -> str:
    """The page's text without tags (what a reader sees), spaces collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


async def ok(response: Any) -> Any:
    assert response.status_code < 400, response.text
    return response
