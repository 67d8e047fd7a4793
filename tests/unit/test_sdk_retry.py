"""The SDK's retry policy: what is retried, and how long it waits (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrepot.client.retry import RetryPolicy, parse_retry_after, replayable

policies = st.builds(
    RetryPolicy,
    attempts=st.integers(1, 20),
    base_delay=st.floats(0, 10, allow_nan=False),
    max_delay=st.floats(0, 120, allow_nan=False),
    max_retry_after=st.floats(0, 3600, allow_nan=False),
)
attempts = st.integers(0, 100)


@given(policies, attempts)
def test_backoff_is_full_jitter_under_the_exponential_ceiling_and_the_cap(
    policy: RetryPolicy, attempt: int
) -> None:
    delay = policy.backoff(attempt)
    assert 0 <= delay <= min(policy.max_delay, policy.base_delay * 2**attempt)


@given(attempts)
def test_backoff_spans_its_whole_range(attempt: int) -> None:
    high = RetryPolicy(base_delay=1, max_delay=8, random=lambda lo, hi: hi)
    low = RetryPolicy(base_delay=1, max_delay=8, random=lambda lo, hi: lo)
    assert high.backoff(attempt) == min(8, 2**attempt)
    assert low.backoff(attempt) == 0


RETRIED = st.sampled_from([429, 502, 503, 504])
OTHERS = st.integers(400, 599).filter(lambda s: s not in (409, 429, 502, 503, 504))


@given(policies, attempts, RETRIED, st.floats(0, 3600, allow_nan=False))
def test_retry_after_is_the_wait_unless_longer_than_allowed(
    policy: RetryPolicy, attempt: int, status: int, after: float
) -> None:
    delay = policy.delay_after_status(attempt, status, after, replayable=True)
    if attempt + 1 >= policy.attempts or after > policy.max_retry_after:
        assert delay is None
    else:
        assert delay == after


@given(policies, attempts, RETRIED)
def test_without_retry_after_the_wait_is_the_backoff(
    policy: RetryPolicy, attempt: int, status: int
) -> None:
    delay = policy.delay_after_status(attempt, status, None, replayable=True)
    if attempt + 1 >= policy.attempts:
        assert delay is None
    else:
        assert delay is not None
        assert 0 <= delay <= policy.max_delay


@given(policies, OTHERS, attempts)
def test_other_statuses_are_never_retried(policy: RetryPolicy, status: int, attempt: int) -> None:
    assert policy.delay_after_status(attempt, status, 1.0, replayable=True) is None


def test_attempts_count_the_first_try() -> None:
    policy = RetryPolicy(attempts=3)
    assert policy.delay_after_status(0, 503, None, replayable=True) is not None
    assert policy.delay_after_status(1, 503, None, replayable=True) is not None
    assert policy.delay_after_status(2, 503, None, replayable=True) is None
    assert RetryPolicy(attempts=1).delay_after_error(0, replayable=True, connected=False) is None
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)


def test_a_write_that_is_not_replayable_is_retried_only_when_nothing_reached_the_server() -> None:
    policy = RetryPolicy()
    assert policy.delay_after_error(0, replayable=False, connected=False) is not None
    assert policy.delay_after_error(0, replayable=False, connected=True) is None
    assert policy.delay_after_error(0, replayable=True, connected=True) is not None
    assert policy.delay_after_status(0, 429, 0.5, replayable=False) == 0.5  # the limiter refused
    assert policy.delay_after_status(0, 503, 0.5, replayable=False) is None
    assert policy.delay_after_status(0, 502, None, replayable=False) is None  # may be applied
    assert policy.delay_after_status(0, 504, None, replayable=False) is None


def test_a_409_is_retried_only_as_an_idempotency_key_in_flight() -> None:
    policy = RetryPolicy()
    assert policy.delay_after_status(0, 409, 1.0, replayable=True) == 1.0
    assert policy.delay_after_status(0, 409, None, replayable=True) is None  # a real conflict
    assert policy.delay_after_status(0, 409, 1.0, replayable=False) is None


@pytest.mark.parametrize(
    ("method", "key", "expected"),
    [
        ("GET", None, True),
        ("head", None, True),
        ("OPTIONS", None, True),
        ("POST", None, False),
        ("DELETE", None, False),
        ("POST", "k", True),
        ("PATCH", "k", True),
    ],
)
def test_replayable_requests(method: str, key: str | None, expected: bool) -> None:
    assert replayable(method, key) is expected


@given(st.integers(0, 10**6))
def test_retry_after_seconds(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == seconds


@given(st.integers(-86_400, 86_400))
def test_retry_after_http_date_is_the_time_until_then(offset: int) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=offset), usegmt=True)
    assert parse_retry_after(header, now=now) == max(0, offset)


@pytest.mark.parametrize("value", [None, "", "  ", "soon", "NaN", "Mon, 99 Foo 2026"])
def test_unreadable_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_negative_retry_after_is_now() -> None:
    assert parse_retry_after("-5") == 0
