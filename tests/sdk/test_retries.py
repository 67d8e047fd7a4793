"""Retries through a proxy that loses answers after the server committed, and answers 429s.

A write whose answer was lost is sent again with the same Idempotency-Key, and
the server replays its first answer: the write is applied exactly once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from entrepot.client import (
    Client,
    ConnectionFailed,
    RateLimited,
    RetryPolicy,
    ServerError,
)
from tests.sdk.conftest import ADMIN, FAST, unique
from tests.sdk.proxy import Proxy

RATE_LIMITED = json.dumps(
    {
        "type": "https://entrepot.dev/problems/rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "The plan allows 1 request a second.",
        "request_id": "canned-429",
    }
).encode()
PROBLEM = {"content-type": "application/problem+json"}


@pytest.fixture
def flaky(through: Proxy) -> Iterator[Client]:
    with Client(through.url, ADMIN, retry=FAST) as client:
        yield client


def keys_sent(proxy: Proxy, method: str, path: str) -> list[str | None]:
    return [r.headers.get("idempotency-key") for r in proxy.seen(method, path)]


def feed_entries(admin: Client, dataset: str) -> list[tuple[str, str, int]]:
    page = admin.changes.list(dataset, after=0, limit=1000)
    return [(c.op, c.id, c.version) for c in page.changes]


def test_a_create_whose_answer_was_lost_is_applied_once(
    flaky: Client, through: Proxy, admin: Client, dataset: str
) -> None:
    through.drop(1)
    created = flaky.records.create(dataset, {"sku": "a", "name": "Apple"})

    assert [r.outcome for r in through.seen("POST", f"/v1/datasets/{dataset}/records")] == [
        "dropped",
        "forwarded",
    ]
    sent = keys_sent(through, "POST", f"/v1/datasets/{dataset}/records")
    assert sent[0] is not None
    assert sent[0] == sent[1], "the retry reuses the write's Idempotency-Key"
    assert [r.id for r in admin.records.list(dataset)] == [created.id]
    assert feed_entries(admin, dataset) == [("upsert", created.id, 1)]


def test_put_patch_and_delete_whose_answers_were_lost_are_applied_once(
    flaky: Client, through: Proxy, admin: Client, keyed_dataset: str
) -> None:
    ds = keyed_dataset
    through.drop(1)
    put = flaky.records.put(ds, "k", {"sku": "k", "name": "One"})
    assert put.version == 1

    through.drop(2)  # lost twice: the third try is answered
    patched = flaky.records.patch(ds, "k", {"name": "Two"})
    assert patched.version == 2
    assert len(set(keys_sent(through, "PATCH", f"/v1/datasets/{ds}/records/k"))) == 1

    through.drop(1)
    flaky.records.delete(ds, "k")

    outcomes = [(r.method, r.outcome) for r in through.requests]
    assert outcomes.count(("PUT", "dropped")) == 1
    assert outcomes.count(("PATCH", "dropped")) == 2
    assert outcomes.count(("DELETE", "dropped")) == 1
    assert feed_entries(admin, ds) == [("upsert", "k", 1), ("upsert", "k", 2), ("delete", "k", 3)]
    assert list(admin.records.list(ds)) == []


def test_a_write_sent_without_an_idempotency_key_is_not_retried_after_it_left(
    flaky: Client, through: Proxy, admin: Client, dataset: str
) -> None:
    through.drop(1)
    with pytest.raises(ConnectionFailed):
        flaky.records.create(dataset, {"sku": "x", "name": "X"}, idempotency_key=None)
    assert len(through.seen("POST", f"/v1/datasets/{dataset}/records")) == 1
    assert len(list(admin.records.list(dataset))) == 1, "the server applied it; no second copy"


def test_the_callers_idempotency_key_is_sent_and_replays_the_first_answer(
    flaky: Client, through: Proxy, admin: Client, dataset: str
) -> None:
    key = unique("order")
    first = flaky.records.create(dataset, {"sku": "y", "name": "Y"}, idempotency_key=key)
    again = flaky.records.create(dataset, {"sku": "y", "name": "Y"}, idempotency_key=key)
    assert again.id == first.id
    assert keys_sent(through, "POST", f"/v1/datasets/{dataset}/records") == [key] * 2
    assert len(list(admin.records.list(dataset))) == 1


def test_429s_are_waited_out_honouring_retry_after(
    flaky: Client, through: Proxy, dataset: str
) -> None:
    through.answer(2, 429, headers={**PROBLEM, "Retry-After": "1"}, body=RATE_LIMITED)
    started = time.monotonic()
    found = flaky.datasets.get(dataset)
    waited = time.monotonic() - started

    assert found.name == dataset
    assert [r.outcome for r in through.seen("GET", f"/v1/datasets/{dataset}")] == [
        "answered",
        "answered",
        "forwarded",
    ]
    assert waited >= 2.0, "Retry-After: 1, twice"


def test_a_write_after_429s_is_applied_once(
    flaky: Client, through: Proxy, admin: Client, dataset: str
) -> None:
    through.answer(2, 429, headers={**PROBLEM, "Retry-After": "0"}, body=RATE_LIMITED)
    flaky.records.create(dataset, {"sku": "z", "name": "Z"})
    assert len(list(admin.records.list(dataset))) == 1


def test_when_429s_outlast_the_retries_rate_limited_carries_the_problem(
    through: Proxy, dataset: str
) -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
    through.answer(5, 429, headers={**PROBLEM, "Retry-After": "7"}, body=RATE_LIMITED)
    with (
        Client(through.url, ADMIN, retry=policy, sleep=sleeps.append) as client,
        pytest.raises(RateLimited) as limited,
    ):
        client.datasets.get(dataset)

    problem = limited.value
    assert problem.status == 429
    assert problem.title == "Too many requests"
    assert problem.detail == "The plan allows 1 request a second."
    assert problem.request_id == "canned-429"
    assert problem.retry_after == 7
    assert sleeps == [7.0, 7.0], "three attempts: two waits of Retry-After"
    assert len(through.seen("GET", f"/v1/datasets/{dataset}")) == 3


def test_a_retry_after_longer_than_the_policy_allows_is_raised_at_once(
    through: Proxy, dataset: str
) -> None:
    through.answer(1, 429, headers={**PROBLEM, "Retry-After": "3600"}, body=RATE_LIMITED)
    with (
        Client(through.url, ADMIN, retry=RetryPolicy(max_retry_after=10)) as client,
        pytest.raises(RateLimited) as limited,
    ):
        client.datasets.get(dataset)
    assert limited.value.retry_after == 3600
    assert len(through.seen("GET", f"/v1/datasets/{dataset}")) == 1


def test_503s_are_retried_with_backoff(flaky: Client, through: Proxy, dataset: str) -> None:
    through.answer(2, 503, headers=PROBLEM, body=b'{"title": "Unavailable", "status": 503}')
    assert flaky.datasets.get(dataset).name == dataset
    assert len(through.seen("GET", f"/v1/datasets/{dataset}")) == 3

    through.answer(4, 503, headers=PROBLEM, body=b'{"title": "Unavailable", "status": 503}')
    with pytest.raises(ServerError) as failed:
        flaky.datasets.get(dataset)
    assert failed.value.status == 503


def test_a_connection_refused_is_retried_then_raised(dataset: str) -> None:
    sleeps: list[float] = []
    with (
        Client("http://127.0.0.1:9", ADMIN, retry=FAST, sleep=sleeps.append) as client,
        pytest.raises(ConnectionFailed) as failed,
    ):
        client.datasets.get(dataset)
    assert "127.0.0.1:9" in str(failed.value)
    assert len(sleeps) == FAST.attempts - 1
    assert all(0 <= s <= FAST.max_delay for s in sleeps)


def test_the_real_rate_limiter_is_waited_out_and_its_problem_carried(
    server: str, admin: Client, dataset: str
) -> None:
    plan = unique("slow").lower()
    admin.plans.create(plan, rate_per_second=1, burst=1)
    app = admin.apps.create(admin.datasets.get(dataset).org, "slow", scopes=["datasets:read"])
    admin.apps.update(app.id, plan=plan)
    key = admin.keys.create(app.id, "k").key

    with Client(server, key, retry=RetryPolicy(attempts=1)) as impatient:
        impatient.datasets.get(dataset)
        with pytest.raises(RateLimited) as limited:
            impatient.datasets.get(dataset)
    assert limited.value.type.endswith("/rate-limited")
    assert limited.value.retry_after is not None
    assert limited.value.retry_after >= 1
    assert limited.value.headers["ratelimit-remaining"] == "0"

    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with Client(server, key, retry=FAST, sleep=sleep) as patient:
        for _ in range(2):
            assert patient.datasets.get(dataset).name == dataset
    assert waits, "the limiter refused at least once"
    assert all(w >= 1 for w in waits), "each wait is the server's Retry-After"
