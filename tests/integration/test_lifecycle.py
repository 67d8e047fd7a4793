"""A replica that starts and stops again and again never hangs on the way out.

Before background loops were stopped with re-cancellation, a cancellation
swallowed by asyncpg's connect (or 3.11's wait_for) left a listener running
and shutdown waiting for it forever, about once in a hundred short lifetimes.
"""

from __future__ import annotations

import asyncio

import httpx

from entrepot.app import create_app
from entrepot.settings import Settings

CYCLES = 60


async def test_short_lifetimes_always_shut_down(settings: Settings) -> None:
    for _ in range(CYCLES):
        app = create_app(settings)
        async with asyncio.timeout(20), app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                assert (await c.get("/readyz")).status_code == 200
