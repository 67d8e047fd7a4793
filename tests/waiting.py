"""Waiting for a condition instead of sleeping and hoping it holds by then.

Each helper polls ``check`` until it returns something truthy (and returns that),
or fails the test with ``what`` once ``within`` seconds have passed. Deadlines
are generous on purpose: a loaded two-core CI machine is slow, and a deadline
only bounds how long a broken build takes to fail, never how long a passing one
waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

DEADLINE_SECONDS = 60.0


def wait_until(
    check: Callable[[], T], what: str, *, within: float = DEADLINE_SECONDS, every: float = 0.05
) -> T:
    """Poll ``check`` (blocking) until it returns a truthy value; return it."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within:g} s: {what} (last check gave {result!r})")
        time.sleep(every)


async def until(
    check: Callable[[], Awaitable[T]],
    what: str,
    *,
    within: float = DEADLINE_SECONDS,
    every: float = 0.02,
) -> T:
    """Await ``check`` until it returns a truthy value; return it (the loop keeps running)."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within:g} s: {what} (last check gave {result!r})")
        await asyncio.sleep(every)
