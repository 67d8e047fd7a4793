"""When to retry a request and how long to wait: pure functions, no I/O.

Both clients run the same loop around these decisions (``_async.py`` and the
``_sync.py`` generated from it): send, and on a connection error or an error
answer ask :meth:`RetryPolicy.delay_after_error` / :meth:`RetryPolicy.delay_after_status`
for a delay, or ``None`` to give up.

What is retried:

- connection errors, 429 and 503, 502 and 504 (a load balancer that lost its
  upstream mid-request: nginx, cloud balancers), and a 409 carrying
  ``Retry-After`` (the same Idempotency-Key still in flight on the server);
- only for requests that are safe to send twice: ``GET``, ``HEAD``,
  ``OPTIONS``, and writes that carry an ``Idempotency-Key`` (the server replays
  the first answer instead of applying the write again). A write sent without
  one is retried only when nothing reached the server (it could not connect)
  or the rate limiter refused it (429, answered before any handler runs).

How long: exponential backoff with full jitter, ``uniform(0, min(max_delay,
base_delay * 2**attempt))``; a ``Retry-After`` (seconds or an HTTP date) is
honoured as the wait instead, unless it is longer than ``max_retry_after``,
in which case the error is raised at once (a quota that resets tomorrow).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def replayable(method: str, idempotency_key: str | None) -> bool:
    """Whether sending the request twice has the effect of sending it once."""
    return method.upper() in SAFE_METHODS or bool(idempotency_key)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` counts every try, the first included (1 disables retries)."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    random: Callable[[float, float], float] = field(default=random.uniform, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts counts the first try: at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays are not negative")

    def backoff(self, attempt: int) -> float:
        """Full jitter after the ``attempt``-th failure (0 for the first)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt, 62))
        return min(ceiling, max(0.0, self.random(0.0, ceiling)))

    def delay_after_error(self, attempt: int, *, replayable: bool, connected: bool) -> float | None:
        """After a connection error; ``connected`` is False when the request never left."""
        if attempt + 1 >= self.attempts:
            return None
        if connected and not replayable:
            return None
        return self.backoff(attempt)

    def delay_after_status(
        self, attempt: int, status: int, retry_after: float | None, *, replayable: bool
    ) -> float | None:
        """After an error answer; ``retry_after`` is the parsed header, if any."""
        if attempt + 1 >= self.attempts:
            return None
        in_flight = status == 409 and retry_after is not None  # the same key, still running
        if status not in RETRY_STATUSES and not in_flight:
            return None
        # A 429 is the limiter refusing before the handler runs: safe for any method. A 502,
        # 503 or 504 may come from a write that was applied, so it needs a replayable request.
        if status != 429 and not replayable:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after
        return self.backoff(attempt)


NO_RETRIES = RetryPolicy(attempts=1)

__all__ = ["NO_RETRIES", "RetryPolicy", "parse_retry_after", "replayable"]
