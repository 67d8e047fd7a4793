"""The portal's first-run set-up in Chromium, on a platform no one has an account on
yet (a server of its own, on an empty database), and its error page: both checked
by axe-core like every other page (issue 11)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.axe import assert_accessible
from tests.browser.test_portal import SAVE_SHOTS, SHOTS, new_browser
from tests.e2e.test_serve import serving
from tests.integration.portal_helpers import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def empty_platform(
    browser_installed: None, tmp_path_factory: pytest.TempPathFactory, fresh_database: object
) -> Iterator[str]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    log = tmp_path_factory.mktemp("setup") / "serve.log"
    env = {"ENTREPOT_DATABASE_URL": url, "ENTREPOT_POOL_MAX_SIZE": "6"}
    with serving(env, log=log) as base:
        yield base


async def test_the_first_person_sets_the_platform_up_in_the_browser(
    empty_platform: str, chromium: Any
) -> None:
    browser = await new_browser(chromium)
    page = browser.page
    try:
        await page.goto(f"{empty_platform}/portal/")
        await page.get_by_role("heading", name="Set up the platform").wait_for()
        await assert_accessible(page)
        await page.get_by_label("Email").fill("founder@example.test")
        await page.get_by_label("Password", exact=True).fill("short")
        await page.get_by_label("Password again").fill("short")
        await page.get_by_label("Name (in URLs)").fill("founders")
        await page.get_by_label("Title").fill("Founders")
        await page.get_by_role("button", name="Create and sign in").click()
        # Refused beside its field, in the page; then done right.
        await page.locator("#e-password").wait_for()
        await assert_accessible(page)
        if SAVE_SHOTS:
            await page.screenshot(path=str(SHOTS / "portal-setup.png"), full_page=True)
        await page.get_by_label("Password", exact=True).fill(PASSWORD)
        await page.get_by_label("Password again").fill(PASSWORD)
        await page.get_by_role("button", name="Create and sign in").click()
        await page.get_by_role("heading", name=re.compile("Welcome")).wait_for()
        assert "Founders" in await page.locator("main").inner_text()

        # Once someone has an account, the set-up page is gone.
        await page.goto(f"{empty_platform}/portal/setup")
        assert page.url.endswith("/portal/")  # signed in: sent home via the sign-in page

        # The error page: what a missing application looks like.
        missing = await page.goto(f"{empty_platform}/portal/apps/not-an-app")
        assert missing is not None
        assert missing.status == 404
        await page.get_by_role("alert").wait_for()
        await assert_accessible(page)
    finally:
        await browser.context.close()
    assert browser.outside == []
    assert browser.console == []
