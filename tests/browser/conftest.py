"""Headless Chromium (Debian's ``chromium``, driven by Playwright) against a real
``entrepot serve``, and static pages served from other origins.

Playwright's own browser downloads are never used: the suite launches
/usr/bin/chromium. Without it (or without Playwright) the suite is skipped,
naming what to install; in CI (``CI`` set) that is a failure instead.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI
from tests.e2e.test_serve import serving

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (containers, root), no GPU, and nothing the browser would fetch for itself.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN = "browser-admin-" + uuid.uuid4().hex
WAIT_MS = 15_000  # the longest any page step may take


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: install the Debian package `chromium`"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright is missing: pip install -e '.[dev]'"
    return None


class Page:
    """A page's HTML on an origin of its own: ``http://127.0.0.1:<port>/``."""

    HTML = b"<!doctype html><html><head><title>portal</title></head><body>portal</body></html>"

    def __init__(self) -> None:
        html = self.HTML

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(html)))
                self.end_headers()
                self.wfile.write(html)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Page:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@dataclass(frozen=True)
class Site:
    api: str  # entrepot serve
    log: Path  # its log (JSON lines)
    portal: str  # an origin listed in ENTREPOT_CORS_ORIGINS
    stranger: str  # an origin that is not


@pytest.fixture(scope="session")
def browser_installed() -> None:
    """Skip (fail in CI) before anything starts, naming what to install."""
    reason = _missing()
    if reason is not None:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


# Package scope: its server and connections end with the browser tests, not the session.
@pytest.fixture(scope="package")
def site(
    browser_installed: None, tmp_path_factory: pytest.TempPathFactory, fresh_database: object
) -> Iterator[Site]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    log = tmp_path_factory.mktemp("browser") / "serve.log"
    with Page() as portal, Page() as stranger:
        env = {
            "ENTREPOT_DATABASE_URL": url,
            "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
            "ENTREPOT_LOG_FORMAT": "json",
            "ENTREPOT_LOG_LEVEL": "info",
            "ENTREPOT_POOL_MAX_SIZE": "6",
            "ENTREPOT_CORS_ORIGINS": portal.origin,
            "ENTREPOT_FEED_HEARTBEAT_SECONDS": "1",
            # The portal's webhook pages deliver to a receiver on loopback.
            "ENTREPOT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        }
        with serving(env, log=log) as base:
            yield Site(base, log, portal.origin, stranger.origin)


@pytest.fixture(scope="package")
async def chromium(site: Site) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=WAIT_MS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def admin(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=site.api, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    ) as client:
        yield client
