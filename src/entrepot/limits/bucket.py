"""The token bucket every limit decision uses, in-process and (as Lua) in Redis.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second;
a request takes one token or is refused. The state is two numbers (tokens,
time of last update), so the Redis script in ``bucket.lua`` computes exactly
what :func:`take` computes; a property test holds the two to that.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    stamp: float


@dataclass(frozen=True, slots=True)
class Decision:
    """What the RateLimit-* response headers and a 429 say."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until a refused caller may try again (0 when allowed)


def refill(bucket: Bucket | None, rate: float, burst: int, now: float) -> float:
    if bucket is None:
        return float(burst)
    elapsed = max(0.0, now - bucket.stamp)  # a clock stepping back never drains a bucket
    return min(float(burst), bucket.tokens + elapsed * rate)


def take(
    bucket: Bucket | None, rate: float, burst: int, now: float, cost: int = 1
) -> tuple[Bucket, Decision]:
    """Spend ``cost`` tokens (0: only look) if there is one; the new state and the decision."""
    tokens = refill(bucket, rate, burst, now)
    allowed = tokens >= 1.0
    if allowed:
        tokens -= cost
    return Bucket(tokens, now), decide(allowed, tokens, rate, burst)


def decide(allowed: bool, tokens: float, rate: float, burst: int) -> Decision:
    return Decision(
        allowed=allowed,
        limit=burst,
        remaining=math.floor(tokens),
        reset=math.ceil(max(0.0, burst - tokens) / rate),
        retry_after=0 if allowed else max(1, math.ceil((1.0 - tokens) / rate)),
    )


class LocalBuckets:
    """Buckets kept in this process by key; past ``capacity`` the least recently used
    is forgotten (it comes back full, which errs on the side of admitting)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, key: str, rate: float, burst: int, cost: int = 1) -> Decision:
        bucket, decision = take(self._buckets.get(key), rate, burst, time.monotonic(), cost)
        self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)
        return decision

    def peek(self, key: str, rate: float, burst: int) -> Decision:
        """The decision a request would get now, remembering nothing (no entry is made)."""
        return take(self._buckets.get(key), rate, burst, time.monotonic(), 0)[1]
