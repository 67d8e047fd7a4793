"""The liveness registry's deadlines, on a clock the test moves by hand.

No event loop and no thread run here: the test calls the watch's two halves
itself, ``tick()`` (the timer on the event loop) and ``look(running)`` (the
watchdog thread), as they would be called at those moments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog

from entrepot import liveness as liveness_module
from entrepot.liveness import EVENT_LOOP, Liveness

Log = list[MutableMapping[str, Any]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Log]:
    """Every event the module logs, info included (the session logs at warning)."""
    unfiltered = structlog.wrap_logger(
        None,
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    monkeypatch.setattr(liveness_module, "log", unfiltered)
    with structlog.testing.capture_logs() as entries:
        yield entries


def events(entries: Log, event: str) -> Log:
    return [e for e in entries if e["event"] == event]


def run(live: Liveness, clock: Clock, seconds: float, *, running: bool = True) -> None:
    """Let ``seconds`` pass on a healthy event loop: ticks and looks on time."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + live.tick_seconds)
        live.look(running)
        if running:
            live.tick()


def test_a_loop_is_overdue_after_twice_its_interval_plus_the_grace(clock: Clock) -> None:
    live = Liveness(grace=10, clock=clock)
    sweep = live.register("feed-sweep", every=1)
    assert sweep.allowance == 12
    clock.now += 12
    assert live.stalled() == []
    clock.now += 0.01
    assert live.stalled() == ["feed-sweep"]
    sweep.beat()
    assert live.stalled() == []


def test_only_the_silent_loops_are_named_in_order(clock: Clock) -> None:
    live = Liveness(grace=0, clock=clock)
    fast = live.register("b-fast", every=1)
    live.register("c-slow", every=100)
    live.register("a-other", every=1)
    clock.now += 5
    fast.beat()
    assert live.stalled() == ["a-other"]
    clock.now += 300
    assert live.stalled() == ["a-other", "b-fast", "c-slow"]


def test_a_loop_stopped_on_purpose_is_not_reported(clock: Clock) -> None:
    live = Liveness(grace=0, clock=clock)
    meter = live.register("usage-meter", every=1)
    live.unregister(meter, None)
    clock.now += 1000
    assert live.stalled() == []
    assert live.names() == []
    again = live.register("usage-meter", every=1)  # the name is free again
    live.unregister(meter)  # the old heartbeat no longer unregisters the new one
    assert live.names() == ["usage-meter"]
    clock.now += 3
    assert live.stalled() == ["usage-meter"]
    again.beat()
    assert live.stalled() == []


def test_two_loops_cannot_share_a_name(clock: Clock) -> None:
    live = Liveness(clock=clock)
    live.register("feed-sweep", every=1)
    with pytest.raises(ValueError, match="feed-sweep"):
        live.register("feed-sweep", every=2)


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="lag"):
        Liveness(lag=0)
    with pytest.raises(ValueError, match="grace"):
        Liveness(grace=-1)


def test_a_stall_the_watchdog_sees_is_reported_for_the_hold_after_it(
    clock: Clock, logs: Log
) -> None:
    live = Liveness(lag=1, hold=30, grace=0, clock=clock)
    live.tick()
    run(live, clock, 5)
    assert live.stalled() == []
    # The event loop blocks: the watchdog keeps looking, no tick comes.
    for _ in range(40):
        clock.now += live.tick_seconds
        live.look(running=True)
    assert len(events(logs, "event_loop_stalled")) == 1  # once per stall, not per look
    assert events(logs, "event_loop_stalled")[0]["where"]  # where the loop was stuck
    ended = clock.now
    live.tick()  # the loop runs again
    assert live.stalled() == [EVENT_LOOP]
    run(live, clock, 29)
    assert live.stalled() == [EVENT_LOOP]  # still reported between freezes
    assert len(events(logs, "event_loop_recovered")) == 1
    run(live, clock, ended + 30 - clock.now + 0.01)
    assert live.stalled() == []
    assert len(events(logs, "event_loop_stalled")) == 1


def test_a_stall_only_the_tick_noticed_counts_too(clock: Clock, logs: Log) -> None:
    """A C call holding the GIL throughout keeps the watchdog from looking."""
    live = Liveness(lag=1, hold=30, grace=0, clock=clock)
    live.tick()
    clock.now += 4
    live.tick()
    assert live.stalled() == [EVENT_LOOP]
    assert [e["seconds"] for e in events(logs, "event_loop_stalled")] == [
        pytest.approx(4 - live.tick_seconds)
    ]


def test_a_probe_answered_right_after_a_stall_reports_it(clock: Clock) -> None:
    """The probe may be served before the tick runs again: it settles the time itself."""
    live = Liveness(lag=1, hold=30, grace=0, clock=clock)
    live.tick()
    clock.now += 4
    assert live.stalled() == [EVENT_LOOP]
    live.tick()
    assert live.stalled() == [EVENT_LOOP]


def test_repeated_freezes_stay_reported(clock: Clock) -> None:
    live = Liveness(lag=1, hold=10, grace=0, clock=clock)
    live.tick()
    for freeze in range(5):
        run(live, clock, 8)
        assert live.stalled() == ([EVENT_LOOP] if freeze else [])  # the last one's hold
        clock.now += 3  # frozen for three seconds, every eight
        live.tick()
        assert live.stalled() == [EVENT_LOOP]
    run(live, clock, 10.5)
    assert live.stalled() == []


def test_lag_below_the_threshold_is_not_a_stall(clock: Clock) -> None:
    live = Liveness(lag=1, hold=10, grace=0, clock=clock)
    live.tick()
    for _ in range(20):
        clock.now += live.tick_seconds + 0.9
        live.look(running=True)
        live.tick()
    assert live.stalled() == []


def test_a_loop_that_is_not_running_is_paused_not_stalled(clock: Clock, logs: Log) -> None:
    """Between two tests sharing an event loop, nothing runs on it: that is no stall."""
    live = Liveness(lag=1, hold=30, grace=5, clock=clock)
    sweep = live.register("feed-sweep", every=1)
    live.tick()
    run(live, clock, 300, running=False)
    run(live, clock, 1)  # the watchdog may see it running before the tick comes...
    assert live.stalled() == []
    run(live, clock, 300, running=False)
    clock.now += 0.1
    live.tick()  # ... or after
    live.look(running=True)
    assert live.stalled() == []
    assert events(logs, "event_loop_stalled") == []
    assert events(logs, "loop_stalled") == []
    sweep.beat()


def test_time_the_event_loop_could_not_run_is_not_held_against_a_loop(clock: Clock) -> None:
    live = Liveness(lag=1, hold=5, grace=0, clock=clock)
    sweep = live.register("feed-sweep", every=5)  # allowed 10 s of silence
    live.tick()
    run(live, clock, 4)
    clock.now += 60  # the event loop is blocked for a minute
    live.tick()
    assert live.stalled() == [EVENT_LOOP]  # not the sweep: it could not run
    run(live, clock, 5.5)
    assert live.stalled() == []
    run(live, clock, 1)  # 4 + 5.5 + 1 s of running time without a beat
    assert live.stalled() == ["feed-sweep"]
    sweep.beat()
    assert live.stalled() == []


def test_an_overdue_loop_is_logged_once_and_its_recovery_once(clock: Clock, logs: Log) -> None:
    live = Liveness(grace=1, clock=clock)
    meter = live.register("usage-meter", every=1)
    live.tick()
    run(live, clock, 10)
    for _ in range(5):
        assert live.stalled() == ["usage-meter"]
    [warning] = events(logs, "loop_stalled")
    assert warning["loop"] == "usage-meter"
    assert warning["allowed_seconds"] == 3
    meter.beat()
    run(live, clock, 1)
    assert [e["loop"] for e in events(logs, "loop_recovered")] == ["usage-meter"]
    run(live, clock, 10)
    assert len(events(logs, "loop_stalled")) == 2  # a new stall, a new warning


async def test_the_watchdog_thread_sees_a_blocked_event_loop(logs: Log) -> None:
    live = Liveness(lag=0.5, hold=30)
    live.start()
    try:
        time.sleep(1.5)  # noqa: ASYNC251 - on purpose: a sync call blocking the loop
        assert live.stalled() == [EVENT_LOOP]
    finally:
        live.stop()
    stalls = events(logs, "event_loop_stalled")
    assert any("test_liveness.py" in e["where"] for e in stalls), stalls
