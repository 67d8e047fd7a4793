"""Cancellation that always lands, and waits that never swallow one.

Python 3.11's ``asyncio.wait_for`` and asyncpg's connect timeout can each drop
a cancellation that arrives in the same loop iteration as their awaitable
completing. A background loop that loses its one ``cancel()`` runs on, and
whoever awaits it (a replica shutting down) hangs forever. So background tasks
are stopped with :func:`stop_tasks`, which cancels again until they end and
gives up loudly after a grace period, and timed waits use ``asyncio.timeout``.
Background loops start with :func:`start_loop`, so one that dies of an exception
says so, and why, at once: its stopped heartbeat fails /healthz only a minute later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any

import structlog

log = structlog.get_logger("entrepot.aio")

STOP_GRACE_SECONDS = 10.0
RECANCEL_SECONDS = 0.2


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; True if it was set."""
    try:
        async with asyncio.timeout(max(seconds, 0.0)):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


def start_loop(loop: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """Run a background loop as a task named ``name`` that logs ``loop_died`` (an error,
    with the traceback) if an exception ever ends it."""
    task = asyncio.create_task(loop, name=name)
    task.add_done_callback(_report_death)
    return task


def _report_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("loop_died", loop=task.get_name(), exc_info=exc)


async def stop_tasks(
    tasks: Iterable[asyncio.Task[Any] | None], grace: float = STOP_GRACE_SECONDS
) -> None:
    """Cancel ``tasks`` and wait for them to end, re-cancelling any that swallowed it."""
    pending = {task for task in tasks if task is not None}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
        if pending and loop.time() >= deadline:
            for task in pending:
                log.error("task_did_not_stop", task=task.get_name(), stack=repr(task.get_stack()))
            return
