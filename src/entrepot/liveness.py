"""Liveness: is every loop of this process still making progress?

Patroni judges a node by its own loop: a leader whose loop has not come round
within its TTL stops leading. A replica judges itself the same way, and
``GET /healthz`` (the liveness probe) fails when restarting the process is the
cure:

- Every background loop (the feed's announcer and sweep, the webhook
  dispatcher, claimer and stats, the usage meter, housekeeping, the LISTEN
  loops) holds a :class:`Heartbeat` and beats once per iteration, idle waits
  included: a loop waiting for a notification waits with a timeout and beats
  each time it runs out. It registers with ``every``, the longest gap its own
  sleeps and timeouts allow, and is overdue once silent for ``2 * every +
  grace`` (the grace covers its store calls: a pooled connection, then a
  statement under the statement timeout). A loop stopped on purpose
  unregisters first; one that died or hangs stays registered and goes stale.
- The event loop itself is watched from both sides: a timer on it ticks every
  ``tick_seconds``, and a watchdog thread looks as often and notices when the
  ticks stop while the loop runs (a callback blocking it). A stall of more than
  ``lag`` seconds is reported for ``hold`` seconds after it ends, since the
  probe can only be answered between freezes; the watchdog logs where the loop
  was stuck. A stall the watchdog could not see (a C call holding the GIL
  throughout) is still caught by the tick, which finds itself late.
- Time the event loop could not run (a stall, or a loop not running at all, as
  between two tests sharing it) is not held against the background loops:
  their last beats move forward by it.

Logging: one warning when a loop becomes overdue or the event loop stalls, one
info line when it recovers; never one per probe.
"""

from __future__ import annotations

import asyncio
import math
import sys
import threading
import time
import traceback
from collections.abc import Callable

import structlog

log = structlog.get_logger("entrepot.liveness")

EVENT_LOOP = "event-loop"  # the name /healthz gives a stalled event loop
GRACE_SECONDS = 60.0
LAG_SECONDS = 5.0
HOLD_SECONDS = 60.0
MAX_TICK_SECONDS = 0.5
WHERE_FRAMES = 4
JOIN_SECONDS = 1.0

Clock = Callable[[], float]


class Heartbeat:
    """One loop's proof of progress: :meth:`beat` once per iteration."""

    __slots__ = ("_clock", "allowance", "last", "name")

    def __init__(self, name: str, allowance: float, clock: Clock) -> None:
        self.name = name
        self.allowance = allowance
        self._clock = clock
        self.last = clock()

    def beat(self) -> None:
        self.last = self._clock()


class Liveness:
    """The registry of a process's heartbeats, and the event loop's watch."""

    def __init__(
        self,
        *,
        grace: float = GRACE_SECONDS,
        lag: float = LAG_SECONDS,
        hold: float = HOLD_SECONDS,
        clock: Clock = time.monotonic,
    ) -> None:
        if grace < 0 or lag <= 0 or hold < 0:
            raise ValueError("liveness needs grace >= 0, lag > 0 and hold >= 0")
        self.grace = grace
        self.lag = lag
        self.hold = hold
        self.tick_seconds = min(MAX_TICK_SECONDS, lag / 4)
        self._clock = clock
        self._beats: dict[str, Heartbeat] = {}
        self._overdue: set[str] = set()  # logged as overdue, not yet as recovered
        # Shared with the watchdog thread; each is written whole (a float, a bool).
        self._due: float | None = None  # when the next tick is expected; None: not watching
        self._pause_seen = False  # the watchdog saw the loop not running since the last tick
        self._stalled_until = -math.inf
        # The watchdog's own.
        self._paused = False
        self._resumed_at = -math.inf
        self._stall_since: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._watchdog: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- heartbeats (on the event loop) -----------------------------------

    def register(self, name: str, every: float) -> Heartbeat:
        """Watch a loop that beats at least every ``every`` seconds when healthy."""
        if name in self._beats:
            raise ValueError(f"a loop named {name!r} is already registered")
        heartbeat = Heartbeat(name, 2 * every + self.grace, self._clock)
        self._beats[name] = heartbeat
        return heartbeat

    def unregister(self, *heartbeats: Heartbeat | None) -> None:
        """Stop watching (a loop about to be stopped on purpose)."""
        for heartbeat in heartbeats:
            if heartbeat is not None and self._beats.get(heartbeat.name) is heartbeat:
                del self._beats[heartbeat.name]
                self._overdue.discard(heartbeat.name)

    def names(self) -> list[str]:
        return sorted(self._beats)

    def stalled(self) -> list[str]:
        """The loops not making progress, by name: the event loop first if it stalled lately.

        Cheap (no I/O): what ``GET /healthz`` answers with.
        """
        now = self._clock()
        self._settle(now)
        self._report(now)
        names = sorted(name for name, hb in self._beats.items() if now - hb.last > hb.allowance)
        if now < self._stalled_until:
            names.insert(0, EVENT_LOOP)
        return names

    # --- the event loop's watch --------------------------------------------

    def start(self) -> None:
        """Watch the running event loop: a tick on it and a watchdog thread beside it."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stopping.clear()
        self.tick()
        self._watchdog = threading.Thread(target=self._watch, name="entrepot-liveness", daemon=True)
        self._watchdog.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due = None
        if self._watchdog is not None:
            self._watchdog.join(JOIN_SECONDS)
            self._watchdog = None
        self._loop = None

    def tick(self) -> None:
        """The watch's beat on the event loop (every ``tick_seconds`` once started)."""
        now = self._clock()
        try:
            self._settle(now)
            self._pause_seen = False
            self._report(now)
        finally:
            self._due = now + self.tick_seconds
            if self._loop is not None and not self._stopping.is_set():
                self._timer = self._loop.call_later(self.tick_seconds, self.tick)

    def look(self, running: bool) -> None:
        """The watchdog's look at the event loop (from its thread, every ``tick_seconds``)."""
        now = self._clock()
        if not running:  # stopped (between tests sharing the loop), not blocked
            self._pause_seen = True
            self._paused = True
            self._stall_since = None
            return
        if self._paused:
            self._paused = False
            self._resumed_at = now
        due = self._due
        if due is None:
            return
        late = now - max(due, self._resumed_at)
        if late > self.lag:
            self._stalled_until = max(self._stalled_until, now + self.hold)
            if self._stall_since is None:
                self._stall_since = now - late
                log.warning("event_loop_stalled", seconds=round(late, 3), where=self._where())
        elif self._stall_since is not None:
            log.info("event_loop_recovered", seconds=round(now - self._stall_since, 3))
            self._stall_since = None

    def _watch(self) -> None:
        while not self._stopping.wait(self.tick_seconds):
            loop = self._loop
            if loop is None:
                return
            self.look(loop.is_running())

    def _settle(self, now: float) -> None:
        """Account for time the event loop could not run since the tick was due."""
        due = self._due
        if due is None or now - due <= self.lag:
            return
        late = now - due
        for heartbeat in self._beats.values():  # no loop could beat meanwhile
            heartbeat.last = min(now, heartbeat.last + late)
        if not self._pause_seen:  # blocked, not stopped
            if now >= self._stalled_until:  # the watchdog did not see it (the GIL was held)
                log.warning("event_loop_stalled", seconds=round(late, 3), where="unknown")
            self._stalled_until = max(self._stalled_until, now + self.hold)
        self._pause_seen = False
        self._due = now

    def _report(self, now: float) -> None:
        for name, heartbeat in self._beats.items():
            silent = now - heartbeat.last
            if silent > heartbeat.allowance:
                if name not in self._overdue:
                    self._overdue.add(name)
                    log.warning(
                        "loop_stalled",
                        loop=name,
                        silent_seconds=round(silent, 1),
                        allowed_seconds=round(heartbeat.allowance, 1),
                    )
            elif name in self._overdue:
                self._overdue.discard(name)
                log.info("loop_recovered", loop=name)

    def _where(self) -> str:
        """The innermost frames the event loop's thread is running (code locations only)."""
        frame = sys._current_frames().get(self._loop_thread) if self._loop_thread else None
        if frame is None:
            return "unknown"
        frames = traceback.extract_stack(frame)[-WHERE_FRAMES:]
        return " <- ".join(f"{f.filename}:{f.lineno} {f.name}" for f in reversed(frames))
