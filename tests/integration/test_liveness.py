"""/healthz fails when a loop stops making progress, and only then.

Each test runs an app of its own, so a stall it causes is seen by nobody else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import structlog

from entrepot.limits.meter import UsageMeter
from entrepot.liveness import EVENT_LOOP, Liveness
from entrepot.settings import Settings
from tests.conftest import app_and_client

EVERY_LOOP = {
    "change-waiter",
    "feed-announce",
    "feed-retire",
    "feed-sweep",
    "housekeeping",
    "invalidation-listener",
    "usage-meter",
    "webhook-claimer",
    "webhook-dispatcher",
    "webhook-listener",
    "webhook-recorder",
    "webhook-stats",
}


async def answer_when(
    client: httpx.AsyncClient,
    holds: Callable[[httpx.Response], bool],
    within: float = 30.0,
) -> httpx.Response:
    """The first /healthz answer for which ``holds`` is true; fails after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        answer = await client.get("/healthz")
        if holds(answer):
            return answer
        assert time.monotonic() < deadline, f"/healthz still answers {answer.text}"
        await asyncio.sleep(0.05)


async def test_every_loop_is_watched_and_none_is_left_behind_at_shutdown(
    settings: Settings,
) -> None:
    async with app_and_client(settings) as (app, client):
        live = app.state.components.get(Liveness)
        assert set(live.names()) == EVERY_LOOP
        answer = await client.get("/healthz")
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert live.names() == []  # each loop stopped on purpose unregistered first
    assert live.stalled() == []


async def test_a_hung_background_loop_fails_liveness_until_it_resumes(
    settings: Settings,
) -> None:
    own = settings.model_copy(
        update={"liveness_grace_seconds": 3.0, "usage_flush_seconds": 0.2}
    )  # the meter may go 2 * 0.2 + 3 s without a beat
    async with app_and_client(own) as (app, client):
        meter = app.state.components.get(UsageMeter)
        flush = meter.flush
        resume = asyncio.Event()

        async def hung_flush() -> None:
            await resume.wait()  # a store call that never answers, until the test says so
            await flush()

        meter.flush = hung_flush
        try:
            with structlog.testing.capture_logs() as logs:
                failed = await answer_when(client, lambda a: a.status_code == 503)
                assert failed.json() == {"status": "unavailable", "stalled": ["usage-meter"]}
                assert failed.headers["content-type"] == "application/json"
                for _ in range(5):  # probes keep failing; the warning was logged once
                    assert (await client.get("/healthz")).status_code == 503
                ready = await client.get("/readyz")
                assert ready.status_code == 200  # readiness is about the store, not this
            warnings = [e for e in logs if e["event"] == "loop_stalled"]
            assert [w["loop"] for w in warnings] == ["usage-meter"]
        finally:
            resume.set()
            meter.flush = flush
        recovered = await answer_when(client, lambda a: a.status_code == 200)
        assert recovered.json() == {"status": "ok"}


async def test_a_blocked_event_loop_is_reported_after_it_runs_again(settings: Settings) -> None:
    own = settings.model_copy(update={"liveness_lag_seconds": 0.5})
    async with app_and_client(own) as (app, client):
        with structlog.testing.capture_logs() as logs:
            time.sleep(1.5)  # noqa: ASYNC251 - on purpose: a sync call blocking the loop
            after = await client.get("/healthz")
        assert after.status_code == 503
        assert after.json() == {"status": "unavailable", "stalled": [EVENT_LOOP]}
        # The watchdog saw it while it lasted, and where the loop was stuck.
        stalls = [e for e in logs if e["event"] == "event_loop_stalled"]
        assert any("test_liveness.py" in e["where"] for e in stalls), stalls
        # It stays reported between freezes (for a minute), not only during them.
        assert (await client.get("/healthz")).status_code == 503
        assert app.state.components.get(Liveness).stalled() == [EVENT_LOOP]
