"""The token bucket: never more than burst + rate x elapsed admitted, and honest headers."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from entrepot.limits.bucket import Bucket, take

rates = st.floats(min_value=0.01, max_value=10_000, allow_nan=False)
bursts = st.integers(min_value=1, max_value=10_000)
gaps = st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=200)


def test_a_fresh_bucket_admits_a_full_burst_then_refuses() -> None:
    bucket = None
    for n in range(5):
        bucket, decision = take(bucket, rate=1.0, burst=5, now=100.0)
        assert decision.allowed
        assert decision.remaining == 4 - n
    bucket, decision = take(bucket, rate=1.0, burst=5, now=100.0)
    assert not decision.allowed
    assert decision.retry_after == 1
    assert decision.reset == 5


def test_tokens_come_back_at_the_rate() -> None:
    bucket = Bucket(tokens=0.0, stamp=10.0)
    _, early = take(bucket, rate=2.0, burst=10, now=10.25)
    assert not early.allowed
    assert early.retry_after == 1
    _, later = take(bucket, rate=2.0, burst=10, now=10.5)
    assert later.allowed


def test_a_clock_stepping_back_does_not_drain_or_fill_the_bucket() -> None:
    bucket = Bucket(tokens=3.0, stamp=50.0)
    _, decision = take(bucket, rate=1.0, burst=10, now=40.0)
    assert decision.allowed
    assert decision.remaining == 2


@given(rates, bursts, gaps)
def test_never_admits_more_than_burst_plus_refill(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket, now, admitted = None, 0.0, 0
    for gap in gaps:
        now += gap
        bucket, decision = take(bucket, rate, burst, now)
        admitted += decision.allowed
        assert 0 <= decision.remaining <= burst
        assert decision.limit == burst
        assert decision.reset >= 0
        if decision.allowed:
            assert decision.retry_after == 0
        else:
            assert decision.retry_after >= 1
    assert admitted <= burst + math.floor(rate * now) + 1


@given(rates, bursts)
def test_a_refused_caller_that_waits_retry_after_is_admitted(rate: float, burst: int) -> None:
    bucket = Bucket(tokens=0.0, stamp=0.0)
    _, refused = take(bucket, rate, burst, 0.0)
    assert not refused.allowed
    _, retried = take(bucket, rate, burst, float(refused.retry_after))
    assert retried.allowed
