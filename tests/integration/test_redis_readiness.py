"""With ENTREPOT_REDIS_URL set, readiness reports Redis; losing it degrades, not fails."""

from __future__ import annotations

import httpx
import pytest

from entrepot.app import create_app
from entrepot.settings import Settings

pytestmark = pytest.mark.redis


async def readiness(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/readyz")


async def test_readiness_reports_redis(settings: Settings, redis_url: str) -> None:
    response = await readiness(settings.model_copy(update={"redis_url": redis_url}))
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "ok"


async def test_unreachable_redis_degrades_but_stays_ready(
    settings: Settings, redis_url: str
) -> None:
    response = await readiness(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "unavailable"
