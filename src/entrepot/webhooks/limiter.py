"""How many deliveries one endpoint may have in flight: additive increase, multiplicative
decrease (AIMD), the way TCP shares a link.

Each endpoint (webhook) has its own limit, so a slow or failing receiver only
ever holds its own slots. The limit grows by one for every ``limit`` attempts
answered 2xx quickly (about +1 per round trip's worth of work) and halves on
an error, a timeout, a refused connection or an answer slower than
``slow_seconds``, at most once per window (a burst of failures among attempts
started together halves it once, as TCP does per round trip); it never falls
below one, so a failing endpoint is still
tried (its schedule, not the limiter, spaces its retries), and never rises
above ``ceiling``. Pure arithmetic: the worker owns the clock and the counts.

The worker's slots are shared too (:func:`fair_share`): an endpoint slow enough to keep
every slot it has busy, yet never slow enough to be halved, would otherwise keep taking
the slots that free up, first come, first served, until none were left for the others.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL = 4
SLOW_SECONDS = 1.0


@dataclass
class Limit:
    """One endpoint's concurrency limit and what is in flight against it."""

    ceiling: int
    limit: float = INITIAL
    in_flight: int = 0
    slow_seconds: float = SLOW_SECONDS
    _credit: float = 0.0
    _epoch: int = 0

    def __post_init__(self) -> None:
        self.limit = float(max(1, min(self.ceiling, int(self.limit))))

    @property
    def free(self) -> int:
        """Attempts that may start now."""
        return max(0, int(self.limit) - self.in_flight)

    def started(self) -> int:
        """One attempt starts; the token to hand back to :meth:`ended`."""
        self.in_flight += 1
        return self._epoch

    def ended(self, token: int, *, ok: bool, seconds: float) -> None:
        """One attempt ended: ``ok`` when it was answered 2xx (or 410: an answer, not a fault)."""
        self.in_flight = max(0, self.in_flight - 1)
        if ok and seconds < self.slow_seconds:
            self._credit += 1.0 / self.limit
            if self._credit >= 1.0:
                self._credit = 0.0
                self.limit = min(float(self.ceiling), self.limit + 1.0)
            return
        if token != self._epoch:
            return  # started before the last decrease: that one already counted it
        self._epoch += 1
        self._credit = 0.0
        self.limit = max(1.0, self.limit / 2.0)


def fair_share(concurrency: int, held_by_others: int, held: int) -> int:
    """How many more of the worker's ``concurrency`` slots one endpoint may take now:
    half of what the other endpoints leave (rounded up), less what it already holds.

    An endpoint alone may hold half the slots (128 of the default 256, above the default
    ceiling of 64 an endpoint). One that holds a slot never takes the last free one
    (with f free and h >= 1 held, ``ceil((f + h) / 2) - h < f``), so an endpoint that
    holds none finds a slot whenever one is free, however many the others want: it
    waits for one attempt to end at most, never for another endpoint's backlog.
    """
    return max(0, -(-(concurrency - held_by_others) // 2) - held)
