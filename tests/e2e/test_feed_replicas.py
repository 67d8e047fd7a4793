"""The change feed across replicas: two `entrepot serve` processes on one PostgreSQL.

Acceptance 1: sixteen concurrent writers, half through each replica, make
thousands of colliding creates, updates and deletes on a small key space
while a follower long-polls one replica the whole time. The follower ends
with exactly the dataset's final state, having seen every seq once, in order.

Acceptance 5 (long poll half): a long poll on replica B answers within
100 ms of a write acknowledged by replica A.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_serve import serving

pytestmark = pytest.mark.slow

ADMIN = "e2e-feed-replicas-admin-token-0123456789"
WRITERS = 16
OPERATIONS = 3_000
KEYS = 40
WRITE_SECONDS = 40.0  # bound on the write phase, whatever the machine
LATENCY_TRIALS = 20
LATENCY_BOUND = 0.100


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, fresh_database: object
) -> Iterator[tuple[str, str]]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_LOG_LEVEL": "warning",
    }
    logs = tmp_path_factory.mktemp("feed-replicas")
    with ExitStack() as stack:
        a = stack.enter_context(serving(env, log=Path(logs / "a.log")))
        b = stack.enter_context(serving(env, log=Path(logs / "b.log")))
        yield a, b


def client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
        limits=httpx.Limits(max_connections=WRITERS + 4),
    )


async def new_dataset(c: httpx.AsyncClient) -> str:
    org = f"org-{time.monotonic_ns()}"
    assert (await c.post("/v1/orgs", json={"name": org, "title": "Org"})).status_code == 201
    name = f"ds-{time.monotonic_ns()}"
    schema = {
        "type": "object",
        "properties": {"k": {"type": "string"}, "n": {"type": "integer"}, "w": {"type": "integer"}},
        "required": ["k", "n"],
    }
    created = await c.post(
        "/v1/datasets",
        json={"name": name, "org": org, "title": "T", "schema": schema, "primary_key": "k"},
    )
    assert created.status_code == 201, created.text
    return name


async def test_a_follower_sees_every_change_once_in_order_and_ends_in_the_final_state(
    replicas: tuple[str, str],
) -> None:
    base_a, base_b = replicas
    async with client(base_a) as a, client(base_b) as b, client(base_a) as follower_client:
        ds = await new_dataset(a)
        records = f"/v1/datasets/{ds}/records"
        remaining = OPERATIONS
        outcomes: Counter[str] = Counter()
        deadline = time.monotonic() + WRITE_SECONDS
        writers_done = asyncio.Event()

        async def writer(n: int) -> None:
            nonlocal remaining
            c = a if n % 2 == 0 else b
            rng = random.Random(n)
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                k = f"k{rng.randrange(KEYS)}"
                body = {"k": k, "n": rng.randrange(1000), "w": n}
                roll = rng.random()
                if roll < 0.35:
                    r = await c.put(f"{records}/{k}", json=body)
                    expected = {200, 201}
                elif roll < 0.55:
                    r = await c.post(records, json=body)
                    expected = {201, 409}
                elif roll < 0.75:
                    r = await c.patch(f"{records}/{k}", json={"n": body["n"], "w": n})
                    expected = {200, 404}
                else:
                    r = await c.delete(f"{records}/{k}")
                    expected = {204, 404}
                assert r.status_code in expected, (r.status_code, r.text)
                outcomes[f"{r.request.method} {r.status_code}"] += 1

        mirror: dict[str, tuple[int, Any]] = {}
        seqs: list[int] = []
        polls = 0

        async def follower() -> None:
            nonlocal polls
            after = 0
            while True:
                r = await follower_client.get(
                    f"/v1/datasets/{ds}/changes",
                    params={"after": after, "limit": 1000, "wait": 2},
                )
                assert r.status_code == 200, r.text
                polls += 1
                page = r.json()
                for change in page["changes"]:
                    seqs.append(change["seq"])
                    if change["op"] == "delete":
                        mirror.pop(change["id"], None)
                    else:
                        mirror[change["id"]] = (change["version"], change["data"])
                after = page["last_seq"]
                if writers_done.is_set() and not page["changes"]:
                    return

        following = asyncio.create_task(follower())
        started = time.monotonic()
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
        elapsed = time.monotonic() - started
        writers_done.set()
        await asyncio.wait_for(following, timeout=30)

        listed = await a.get(records, params={"limit": 1000})
        assert listed.status_code == 200, listed.text
        final = {r["id"]: (r["version"], r["data"]) for r in listed.json()["data"]}
        beyond = await b.get(f"/v1/datasets/{ds}/changes", params={"after": seqs[-1]})
        assert beyond.json()["changes"] == [], "the follower got to the end"

    writes = sum(n for key, n in outcomes.items() if key.split()[1] in ("200", "201", "204"))
    print(
        f"\n{sum(outcomes.values())} operations ({writes} changes) by {WRITERS} writers "
        f"through 2 replicas in {elapsed:.1f} s; follower made {polls} long polls; "
        f"outcomes {dict(sorted(outcomes.items()))}"
    )
    assert sum(outcomes.values()) >= 1_000, "the write phase did too little to mean anything"
    for collision in ("DELETE 204", "POST 409", "PATCH 404", "DELETE 404"):
        assert outcomes[collision], f"the key space is small enough for {collision}"
    assert seqs == list(range(1, len(seqs) + 1)), "every seq exactly once, in order"
    assert len(seqs) == writes, "one change per acknowledged write"
    assert mirror == final


async def test_a_long_poll_on_one_replica_answers_within_100_ms_of_a_commit_on_the_other(
    replicas: tuple[str, str],
) -> None:
    base_a, base_b = replicas
    async with client(base_a) as a, client(base_b) as b:
        ds = await new_dataset(a)
        # Warm both replicas (credentials, dataset metadata, connections).
        for c in (a, b):
            assert (await c.get(f"/v1/datasets/{ds}/changes")).status_code == 200
        latencies: list[float] = []
        after = 0

        async def long_poll(after: int) -> tuple[httpx.Response, float]:
            r = await b.get(f"/v1/datasets/{ds}/changes", params={"after": after, "wait": 10})
            return r, time.monotonic()

        for trial in range(LATENCY_TRIALS):
            poll = asyncio.create_task(long_poll(after))
            await asyncio.sleep(0.05)  # the poll is now parked on replica B
            assert not poll.done()
            written = await a.put(
                f"/v1/datasets/{ds}/records/k{trial}", json={"k": f"k{trial}", "n": trial}
            )
            acked = time.monotonic()
            assert written.status_code == 201, written.text
            answer, answered = await poll
            page = answer.json()
            assert [c["id"] for c in page["changes"]] == [f"k{trial}"]
            after = page["last_seq"]
            latencies.append(max(0.0, answered - acked))

    ms = sorted(x * 1000 for x in latencies)
    print(
        f"\nlong poll on B after commit acknowledged by A: p50 {statistics.median(ms):.1f} ms, "
        f"max {ms[-1]:.1f} ms over {len(ms)} trials"
    )
    assert all(x < LATENCY_BOUND for x in latencies), ms
