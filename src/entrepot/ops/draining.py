"""SIGTERM as a load balancer needs it: not ready at once, still serving for a while,
then stopping (the steps are in :mod:`entrepot.ops.lifecycle`).

uvicorn, on SIGTERM, stops accepting at once: requests a balancer routes here in
the seconds before its health checks notice are refused. Only the served process
(``entrepot serve``'s workers, where uvicorn has installed its own handler before
the app starts) wraps uvicorn's SIGTERM handler: the first SIGTERM starts draining
and hands the signal on to uvicorn ``ENTREPOT_DRAIN_SECONDS`` later, after telling
the app to stop what waits; a second SIGTERM hands it on at once. SIGINT (Ctrl-C)
does not drain: a person at a terminal means now (what waits still ends first, so
the server is not held up by long polls).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import structlog

from entrepot.ops.lifecycle import Lifecycle

log = structlog.get_logger("entrepot.lifecycle")


@contextlib.contextmanager
def drain_on_sigterm(lifecycle: Lifecycle, seconds: float) -> Iterator[None]:
    """While inside, SIGTERM drains for ``seconds`` before uvicorn's handler runs, and
    SIGINT ends what waits before it runs (at once).

    Must be entered on the main thread with the event loop running (the app's
    lifespan, in a served worker). Restores the previous handlers on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    draining = False

    def hand_on(signum: int, frame: FrameType | None) -> None:
        lifecycle.stop_serving()
        handler = previous[signal.Signals(signum)]
        if callable(handler):
            handler(signum, frame)
        else:  # no server handler to hand on to: the signal's own action
            signal.signal(signum, handler)
            signal.raise_signal(signum)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal draining
        if signum == signal.SIGINT or draining:  # a person at a terminal, or asked twice
            hand_on(signum, frame)
            return
        draining = True
        lifecycle.begin_drain()
        log.info("draining", seconds=seconds)
        loop.call_soon_threadsafe(loop.call_later, seconds, hand_on, signum, None)

    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is on_signal:
                signal.signal(sig, handler)
