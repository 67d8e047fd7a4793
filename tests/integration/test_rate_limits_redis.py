"""With Redis, limits and quotas hold across replicas; without it, each replica limits alone."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from entrepot.app import create_app
from entrepot.limits.bucket import Bucket, take
from entrepot.limits.limiter import LUA
from entrepot.settings import Settings
from tests.factories import app_on_plan, make_plan

pytestmark = pytest.mark.redis


def fallbacks() -> float:
    return REGISTRY.get_sample_value("entrepot_rate_limit_fallbacks_total") or 0.0


@pytest.fixture(scope="module")
def script(redis_url: str) -> redis.commands.core.Script:
    return redis.Redis.from_url(redis_url).register_script(LUA)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=0.05, max_value=1000, allow_nan=False),
    burst=st.integers(min_value=1, max_value=1000),
    steps=st.lists(
        st.tuples(st.floats(min_value=0, max_value=3, allow_nan=False), st.sampled_from([0, 1])),
        min_size=1,
        max_size=40,
    ),
)
def test_the_redis_script_decides_as_the_python_bucket(
    script: redis.commands.core.Script, rate: float, burst: int, steps: list[tuple[float, int]]
) -> None:
    """Spending (cost 1) and looking (cost 0) alike."""
    tag = "{test:" + uuid.uuid4().hex + "}"
    keys = [f"entrepot:rl:{tag}", f"entrepot:qd:{tag}:d", f"entrepot:qm:{tag}:m"]
    bucket: Bucket | None = None
    now = 1_000_000.0
    for gap, cost in steps:
        now += gap
        bucket, expected = take(bucket, rate, burst, now, cost)
        verdict, tokens, _, _ = script(
            keys=keys, args=[repr(rate), burst, -1, -1, 60, 60, repr(now), cost]
        )
        assert (verdict == b"ok") == expected.allowed
        assert math.isclose(float(tokens), bucket.tokens, rel_tol=1e-9, abs_tol=1e-9)


def test_the_redis_script_counts_quotas_only_for_admitted_requests(
    script: redis.commands.core.Script,
) -> None:
    tag = "{test:" + uuid.uuid4().hex + "}"
    keys = [f"entrepot:rl:{tag}", f"entrepot:qd:{tag}:d", f"entrepot:qm:{tag}:m"]
    verdicts = [script(keys=keys, args=["1000", 1000, 2, 5, 60, 60, "", 1])[0] for _ in range(4)]
    assert verdicts == [b"ok", b"ok", b"day", b"day"]
    assert script(keys=keys, args=["1000", 1000, 10, 2, 60, 60, "", 1])[0] == b"month"


@pytest.fixture
async def replicas(settings: Settings, redis_url: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two replicas of the platform sharing the store and Redis."""
    shared = settings.model_copy(update={"redis_url": redis_url})
    async with AsyncExitStack() as stack:
        clients = []
        for name in ("a", "b"):
            app = create_app(shared)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url=f"http://{name}")
                )
            )
        yield clients


async def test_a_burst_is_shared_across_replicas(
    client: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    plan = await make_plan(client, rate_per_second=0.1, burst=4)
    _, key = await app_on_plan(client, plan)
    headers = {"Authorization": f"Bearer {key}"}
    statuses = [
        (await replicas[n % 2].get("/v1/datasets", headers=headers)).status_code for n in range(6)
    ]
    assert statuses == [200, 200, 200, 200, 429, 429]


async def test_a_quota_is_exact_across_replicas(
    client: httpx.AsyncClient, replicas: list[httpx.AsyncClient]
) -> None:
    plan = await make_plan(client, rate_per_second=1000, burst=1000, daily_quota=3)
    _, key = await app_on_plan(client, plan)
    headers = {"Authorization": f"Bearer {key}"}
    statuses = [
        (await replicas[n % 2].get("/v1/datasets", headers=headers)).status_code for n in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]


async def test_an_unreachable_redis_falls_back_to_local_limits(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    plan = await make_plan(client, rate_per_second=0.1, burst=2)
    _, key = await app_on_plan(client, plan)
    before = fallbacks()
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(broken)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
            headers = {"Authorization": f"Bearer {key}"}
            statuses = [
                (await c.get("/v1/datasets", headers=headers)).status_code for _ in range(3)
            ]
            ready = await c.get("/readyz")
    assert statuses == [200, 200, 429]
    assert fallbacks() == before + 1  # then local for a while, not once per request
    assert ready.status_code == 200
    assert ready.json()["checks"]["redis"] == "unavailable"


async def test_failed_sign_ins_are_counted_across_replicas(
    client: httpx.AsyncClient, replicas: list[httpx.AsyncClient], settings: Settings
) -> None:
    address = f"{uuid.uuid4().hex[:12]}@example.test"
    made = await client.post(
        "/v1/users", json={"email": address, "password": "correct horse battery staple"}
    )
    assert made.status_code == 201, made.text
    body = {"email": address, "password": "a wrong guess"}
    for n in range(settings.sign_in_failures_burst):
        assert (await replicas[n % 2].post("/v1/auth/token", json=body)).status_code == 401
    for replica in replicas:
        assert (await replica.post("/v1/auth/token", json=body)).status_code == 429
