"""Stopping background tasks: a swallowed cancellation must not hang shutdown."""

from __future__ import annotations

import asyncio

import structlog

from entrepot.aio import start_loop, stop_tasks, wait_event


async def test_a_task_that_swallows_its_first_cancellation_is_still_stopped() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # what a racing wait_for or connect timeout does

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_tasks([task]), timeout=5)
    assert task.cancelled()
    assert swallowed == 1


async def test_a_task_that_ignores_cancellation_is_abandoned_after_the_grace_period() -> None:
    ignoring = True

    async def deaf() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if not ignoring:
                    raise

    task = asyncio.create_task(deaf())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_tasks([task], grace=0.3), timeout=5)
    assert not task.done()
    ignoring = False
    await stop_tasks([task])
    assert task.cancelled()


async def test_finished_and_missing_tasks_are_fine() -> None:
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await stop_tasks([done, None])


async def test_wait_event_reports_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True
    assert await wait_event(event, 0) is True


async def test_a_loop_that_dies_says_why_at_once_and_one_stopped_says_nothing() -> None:
    async def dies() -> None:
        raise RuntimeError("cannot switch to state 15")

    async def runs() -> None:
        await asyncio.sleep(3600)

    with structlog.testing.capture_logs() as logs:
        dead = start_loop(dies(), "feed-sweep")
        alive = start_loop(runs(), "feed-announce")
        await asyncio.wait([dead], timeout=5)
        await stop_tasks([alive])
        await asyncio.sleep(0)  # done callbacks run on the next iteration
    assert [(e["event"], e["log_level"], e["loop"]) for e in logs] == [
        ("loop_died", "error", "feed-sweep")
    ]
    assert isinstance(logs[0]["exc_info"], RuntimeError)
