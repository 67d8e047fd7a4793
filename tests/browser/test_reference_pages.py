"""The API reference in a browser, offline (issue 9, acceptance item 2).

Swagger UI at /docs renders with every request the page makes answered by the
server itself (any other is aborted and recorded, and there must be none); a
key pasted into its Authorize dialog makes "Execute" on GET /v1/me succeed. ReDoc
at /redoc renders too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import ADMIN, WAIT_MS, Site

pytestmark = pytest.mark.browser


class Offline:
    """A browser context where only 127.0.0.1 answers; what else was asked is kept."""

    def __init__(self) -> None:
        self.outside: list[str] = []

    async def route(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            self.outside.append(route.request.url)
            await route.abort()


@pytest.fixture
async def offline(chromium: Any) -> AsyncIterator[tuple[Any, Offline]]:
    guard = Offline()
    context = await chromium.new_context()
    context.set_default_timeout(WAIT_MS)
    await context.route("**/*", guard.route)
    try:
        yield await context.new_page(), guard
    finally:
        await context.close()
    assert guard.outside == [], "the page asked for something beyond 127.0.0.1"


async def test_swagger_ui_renders_offline_and_an_authorized_call_succeeds(
    site: Site, offline: tuple[Any, Offline]
) -> None:
    page, guard = offline
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    await page.goto(f"{site.api}/docs")
    await page.locator(".swagger-ui .info .title", has_text="Entrepot").wait_for()

    await page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    bearer = dialog.locator(".auth-container").filter(has_text="http, Bearer")
    await bearer.locator("input").fill(ADMIN)
    await bearer.locator("button.authorize").click()
    await dialog.locator("button.btn-done").first.click()
    await dialog.wait_for(state="detached")

    operation = page.locator(".opblock").filter(
        has=page.locator(".opblock-summary-path[data-path='/v1/me']")
    )
    await operation.locator(".opblock-summary").first.click()
    try_it = operation.locator("button.try-out__btn", has_text="Try it out")
    if await try_it.count():  # shown unless tryItOutEnabled already opened the form
        await try_it.click()
    await operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    await status.wait_for()
    assert (await status.inner_text()).strip().startswith("200")
    shown = await operation.locator(
        ".live-responses-table tr.response .response-col_description"
    ).inner_text()
    assert '"kind": "admin"' in shown
    assert failed == []
    assert guard.outside == []


async def test_redoc_renders_offline(site: Site, offline: tuple[Any, Offline]) -> None:
    page, _ = offline
    await page.goto(f"{site.api}/redoc")
    await page.locator("h1", has_text="Entrepot").first.wait_for()
    # The document is laid out: an operation of each end of it is in the menu.
    for label in ("Changes after a seq", "A short-lived ticket"):
        await page.get_by_text(label).first.wait_for(state="attached")
