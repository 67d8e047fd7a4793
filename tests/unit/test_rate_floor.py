"""The pace floor for bulk transfers: what counts, and when a client is cut.

Windows are a few tenths of a second here; every client under test is at
least ten times faster or slower than the floor, so scheduling noise cannot
decide an outcome.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from entrepot.streaming import ClientTooSlow, RateFloor

WINDOW = 0.3


async def moved(nbytes: int, after: float) -> int:
    await asyncio.sleep(after)
    return nbytes


async def test_a_client_that_keeps_up_is_never_cut() -> None:
    floor = RateFloor(WINDOW, min_rate=1_000)
    for _ in range(40):  # about four windows of waiting, 100 kB/s against a 1 kB/s floor
        assert await floor.wait(moved(1_000, 0.01), 1_000) == 1_000


async def test_a_client_that_stops_is_cut_one_window_after_it_stopped() -> None:
    floor = RateFloor(WINDOW, min_rate=1_000)
    await floor.wait(moved(10**9, 0.0), 10**9)  # a fast start buys no grace
    started = time.monotonic()
    with pytest.raises(ClientTooSlow, match="no progress"):
        await floor.wait(asyncio.Event().wait(), 0)
    assert WINDOW <= time.monotonic() - started < 3 * WINDOW


async def test_a_crawling_client_is_cut_at_the_end_of_the_window() -> None:
    floor = RateFloor(WINDOW, min_rate=100_000)

    async def crawl() -> None:
        while True:  # 1 kB every 20 ms: 50 kB/s against a 100 kB/s floor
            await floor.wait(moved(1_000, 0.02), 1_000)

    started = time.monotonic()
    with pytest.raises(ClientTooSlow, match="floor"):
        await crawl()
    assert WINDOW <= time.monotonic() - started < 3 * WINDOW


async def test_time_the_server_spends_working_does_not_count() -> None:
    floor = RateFloor(WINDOW, min_rate=100_000)
    for _ in range(5):
        await asyncio.sleep(WINDOW)  # the server is busy: nobody waits on the client
        await floor.wait(moved(100_000, 0.001), 100_000)


async def test_a_cut_step_is_cancelled() -> None:
    floor = RateFloor(WINDOW, min_rate=1_000)
    gate = asyncio.Event()
    step = asyncio.ensure_future(gate.wait())
    with pytest.raises(ClientTooSlow):
        await floor.wait(step, 0)
    assert step.cancelled()
