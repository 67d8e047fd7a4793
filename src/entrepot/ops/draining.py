"""SIGTERM as a load balancer needs it: not ready at once, still serving for a while,
then stopping (the steps are in :mod:`entrepot.ops.lifecycle`).

uvicorn, on SIGTERM, stops accepting at once: requests a balancer routes here in
the seconds before its health checks notice are refused. Only the served process
(``entrepot serve``'s workers, where uvicorn has installed its own handler before
the app starts) wraps uvicorn's SIGTERM handler: the first SIGTERM starts draining
and hands the signal on to uvicorn ``ENTREPOT_DRAIN_SECONDS`` later, after telling
the app to stop what waits; a second SIGTERM hands it on at once. SIGINT (Ctrl-C)
is left alone: a person at a terminal means now.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import structlog

from entrepot.ops.lifecycle import Lifecycle

log = structlog.get_logger("entrepot.lifecycle")

Handler = Callable[[int, FrameType | None], Any]


@contextlib.contextmanager
def drain_on_sigterm(lifecycle: Lifecycle, seconds: float) -> Iterator[None]:
    """While inside, SIGTERM drains for ``seconds`` before uvicorn's handler runs.

    Must be entered on the main thread with the event loop running (the app's
    lifespan, in a served worker). Restores the previous handler on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    state = {"draining": False}

    def hand_on(signum: int, frame: FrameType | None) -> None:
        lifecycle.stop_serving()
        if callable(previous):
            previous(signum, frame)
        else:  # no server handler to hand on to: SIGTERM's own action
            signal.signal(signal.SIGTERM, previous)
            signal.raise_signal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if state["draining"]:  # asked twice: stop now
            hand_on(signum, frame)
            return
        state["draining"] = True
        lifecycle.begin_drain()
        log.info("draining", seconds=seconds)
        loop.call_soon_threadsafe(loop.call_later, seconds, hand_on, signum, None)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)
