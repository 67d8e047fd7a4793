"""Load that proves availability, and the checks of what it left behind.

Writers PUT records, each write with an Idempotency-Key of its own kept across
its retries, and retry until the write is acknowledged or a bounded deadline
passes; readers read what was acknowledged; a follower tails the change feed.
A :class:`Ledger` keeps what the clients saw; :func:`audit` compares it with
what the store holds: no acknowledged write lost, none applied twice, the feed
gapless and replaying to the export.

Shared by test_failover.py (PostgreSQL fails over under two replicas) and
test_rolling.py (replicas die and restart behind HAProxy).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest


@dataclass(frozen=True)
class Retry:
    """How a client retries: the answers that mean "again", the pause between tries
    (the answer's Retry-After when it has one and ``honour_retry_after``, else doubling
    from ``first_pause`` to ``max_pause``, jittered), and the deadline after which it
    gives up: a failure its user sees."""

    deadline: float
    first_pause: float = 0.05
    max_pause: float = 1.0
    honour_retry_after: bool = True
    # 409 only with Retry-After: the same key still in flight, or a deadlock.
    statuses: frozenset[int] = frozenset({409, 429, 502, 503, 504})

    def pause(self, attempt: int, answer: httpx.Response | None = None) -> float:
        asked = answer.headers.get("retry-after") if answer is not None else None
        if self.honour_retry_after and asked is not None and asked.isdigit():
            return float(asked)
        ceiling = min(self.max_pause, self.first_pause * 2.0 ** min(attempt, 30))
        return random.uniform(ceiling / 2, ceiling)

    def again(self, answer: httpx.Response) -> bool:
        if answer.status_code == 409:
            return "retry-after" in answer.headers
        return answer.status_code in self.statuses


@dataclass(frozen=True)
class Ack:
    """An acknowledged write: what the client was told is durable."""

    key: str
    version: int
    body: dict[str, Any]
    at: float
    took: float = 0.0  # from the first try to the acknowledgement, retries included


@dataclass
class Ledger:
    """What the clients saw. A failure is a request given up after its retries, a 5xx
    the platform must never answer (500), or an answer no client expects."""

    acks: list[Ack] = field(default_factory=list)
    latest: dict[str, Ack] = field(default_factory=dict)  # each key's last acknowledged write
    writes: int = 0  # writes attempted (each counted once, however often retried)
    reads: int = 0  # reads attempted: records, pages and the follower's polls
    replayed: int = 0  # writes acknowledged by a replay: a retry of one already applied
    attempts: Counter[str] = field(default_factory=Counter)  # every try's outcome
    unacknowledged: list[dict[str, Any]] = field(default_factory=list)  # writes given up
    unanswered: list[str] = field(default_factory=list)  # reads given up
    server_errors: list[str] = field(default_factory=list)  # 500 and other non-retry 5xx
    unexpected: list[str] = field(default_factory=list)  # anything else not retryable
    stale_reads: list[str] = field(default_factory=list)  # older than an acknowledged write

    @property
    def failures(self) -> int:
        return (
            len(self.unacknowledged)
            + len(self.unanswered)
            + len(self.server_errors)
            + len(self.unexpected)
            + len(self.stale_reads)
        )

    def acknowledge(self, ack: Ack) -> None:
        self.acks.append(ack)
        self.latest[ack.key] = ack


async def send_until_answered(
    c: httpx.AsyncClient,
    method: str,
    path: str,
    ledger: Ledger,
    retry: Retry,
    **request: Any,
) -> httpx.Response | None:
    """Send until an answer that is not a "try again", or None past the deadline.

    Transport errors (a connection refused or cut, a timeout) and the statuses
    of ``retry`` are tried again after a pause; a 500 is tried again too (a
    client with an idempotency key would) but counted as a server error.
    """
    deadline = time.monotonic() + retry.deadline
    for attempt in itertools.count():
        answer: httpx.Response | None = None
        try:
            answer = await c.request(method, path, **request)
        except httpx.TransportError as exc:
            ledger.attempts[type(exc).__name__] += 1
        else:
            ledger.attempts[str(answer.status_code)] += 1
            if answer.status_code >= 500 and not retry.again(answer):
                what = f"{method} {path}: {answer.status_code} {answer.text[:300]}"
                ledger.server_errors.append(what)
            elif not retry.again(answer):
                return answer
        pause = retry.pause(attempt, answer)
        if time.monotonic() + pause >= deadline:
            return None
        await asyncio.sleep(pause)
    raise AssertionError("unreachable")


async def put_until_acknowledged(
    c: httpx.AsyncClient, path: str, body: dict[str, Any], ledger: Ledger, retry: Retry
) -> Ack | None:
    """PUT with one Idempotency-Key, retrying until a 2xx: the same key makes retries safe."""
    ledger.writes += 1
    started = time.monotonic()
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    answer = await send_until_answered(c, "PUT", path, ledger, retry, json=body, headers=headers)
    if answer is None:
        ledger.unacknowledged.append(body)
        return None
    if answer.status_code not in (200, 201):
        ledger.unexpected.append(f"PUT {path}: {answer.status_code} {answer.text[:300]}")
        return None
    ledger.replayed += answer.headers.get("Idempotent-Replayed") == "true"
    now = time.monotonic()
    return Ack(body["k"], answer.json()["version"], body, now, now - started)


async def write(
    c: httpx.AsyncClient,
    records: str,
    writer: int,
    keys: int,
    ledger: Ledger,
    retry: Retry,
    stop: asyncio.Event,
) -> None:
    """Writer ``writer``: write ``keys`` keys in turn until ``stop``, each body unique
    (``n`` counts the writer's writes), so a write applied twice shows in the feed."""
    for n in itertools.count():
        if stop.is_set():
            return
        key = f"w{writer}-{n % keys}"
        ack = await put_until_acknowledged(
            c, f"{records}/{key}", {"k": key, "n": n, "w": writer}, ledger, retry
        )
        if ack is None:
            return  # that write may or may not have landed: stop this key's history
        ledger.acknowledge(ack)


async def read(
    c: httpx.AsyncClient, records: str, ledger: Ledger, retry: Retry, stop: asyncio.Event
) -> None:
    """Until ``stop``: read an acknowledged record by id (it must be at least as new as
    its last acknowledged write: any replica reads the one primary), or a page of them."""
    rng = random.Random()
    while not stop.is_set():
        ledger.reads += 1
        known = rng.choice(list(ledger.latest.values())) if ledger.latest else None
        path = records if known is None or rng.random() < 0.3 else f"{records}/{known.key}"
        params = {"limit": 20} if path == records else None
        answer = await send_until_answered(c, "GET", path, ledger, retry, params=params)
        if answer is None:
            ledger.unanswered.append(f"GET {path}")
        elif answer.status_code != 200:
            ledger.unexpected.append(f"GET {path}: {answer.status_code} {answer.text[:300]}")
        elif known is not None and path != records and answer.json()["version"] < known.version:
            ledger.stale_reads.append(f"{known.key}: {answer.json()['version']} < {known.version}")


@dataclass
class Follower:
    """A client tailing the feed by long polls while the replicas come and go: what it
    saw, and every place its pages did not continue exactly where the last one ended."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)

    @property
    def last_seq(self) -> int:
        return self.changes[-1]["seq"] if self.changes else 0

    async def follow(
        self, c: httpx.AsyncClient, ds: str, ledger: Ledger, retry: Retry, stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            if not await self.page(c, ds, ledger, retry, wait=1):
                return

    async def catch_up(self, c: httpx.AsyncClient, ds: str, ledger: Ledger, retry: Retry) -> None:
        """After the load: read on until a page comes back empty."""
        while await self.page(c, ds, ledger, retry, wait=0) > 0:
            pass

    async def page(
        self, c: httpx.AsyncClient, ds: str, ledger: Ledger, retry: Retry, *, wait: int
    ) -> int:
        """One page after what was seen; how many changes it had (0 when given up)."""
        ledger.reads += 1
        after = self.last_seq
        params = {"after": after, "limit": 1000, "wait": wait}
        path = f"/v1/datasets/{ds}/changes"
        answer = await send_until_answered(c, "GET", path, ledger, retry, params=params)
        if answer is None or answer.status_code != 200:
            got = "no answer" if answer is None else f"{answer.status_code} {answer.text[:300]}"
            ledger.unexpected.append(f"GET {path}?after={after}: {got}")
            return 0
        page: list[dict[str, Any]] = answer.json()["changes"]
        seqs = [change["seq"] for change in page]
        if seqs != list(range(after + 1, after + 1 + len(seqs))):
            self.gaps.append(f"after {after}: {seqs[:5]}...")
        self.changes += page
        return len(page)


async def read_feed(c: httpx.AsyncClient, ds: str) -> list[dict[str, Any]]:
    """The whole feed of ``ds`` from seq 0."""
    changes: list[dict[str, Any]] = []
    after = 0
    while True:
        r = await c.get(f"/v1/datasets/{ds}/changes", params={"after": after, "limit": 1000})
        assert r.status_code == 200, r.text
        page = r.json()
        if not page["changes"]:
            return changes
        changes += page["changes"]
        after = page["last_seq"]


@dataclass(frozen=True)
class Export:
    rows: dict[str, dict[str, Any]]  # by key
    seq: int  # the feed position it is consistent with (X-Entrepot-Seq)


async def read_export(c: httpx.AsyncClient, ds: str) -> Export:
    exported = await c.get(f"/v1/datasets/{ds}/export")
    assert exported.status_code == 200, exported.text
    rows = (orjson.loads(line) for line in exported.content.splitlines())
    return Export({row["k"]: row for row in rows}, int(exported.headers["X-Entrepot-Seq"]))


def replay(feed: list[dict[str, Any]]) -> dict[str, Any]:
    """The dataset a follower of ``feed`` ends up with."""
    mirror: dict[str, Any] = {}
    for change in feed:
        if change["op"] == "delete":
            mirror.pop(change["id"], None)
        else:
            mirror[change["id"]] = change["data"]
    return mirror


@dataclass(frozen=True)
class Audit:
    """What the store holds, against what the clients were told."""

    lost: list[Ack]  # acknowledged, but not in the feed with the version and body told
    duplicated: list[str]  # a write's body in the feed more than once: applied twice
    gaps: list[int]  # seqs missing from 1..last
    diverged: list[str]  # export or versions disagreeing with the feed or the acks


def audit(
    ledger: Ledger, feed: list[dict[str, Any]], export: Export, versions: dict[str, int]
) -> Audit:
    """Check the acknowledged writes against the feed, the export and the records'
    versions (``versions``: each key's version as the store has it)."""
    history = {(c["id"], c["version"]): c["data"] for c in feed}
    lost = [ack for ack in ledger.acks if history.get((ack.key, ack.version)) != ack.body]
    applied = Counter(orjson.dumps(c["data"], option=orjson.OPT_SORT_KEYS) for c in feed)
    duplicated = [body.decode() for body, times in applied.items() if times > 1]
    seqs = [c["seq"] for c in feed]
    gaps = sorted(set(range(1, max(seqs, default=0) + 1)) - set(seqs))
    diverged = []
    if sorted(seqs) != seqs or len(set(seqs)) != len(seqs):
        diverged.append("the feed is not in strictly increasing seq order")
    if replay(feed) != export.rows:
        diverged.append("the feed does not replay to the export")
    if export.seq != max(seqs, default=0):
        diverged.append(f"the export is at seq {export.seq}, the feed at {max(seqs, default=0)}")
    given_up = {body["k"] for body in ledger.unacknowledged}
    acked = Counter(ack.key for ack in ledger.acks)
    for key, version in sorted(versions.items()):
        if version != acked[key] and key not in given_up:
            diverged.append(f"{key} is at version {version} after {acked[key]} writes")
    for key, ack in ledger.latest.items():
        if key not in given_up and export.rows.get(key) != ack.body:
            diverged.append(f"{key} exported as {export.rows.get(key)}, last written {ack.body}")
    return Audit(lost, duplicated, gaps, diverged)


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch in [start, end] with no acknowledged write."""
    points = [start, *sorted(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(points))


def report(config: pytest.Config, line: str) -> None:
    """Show a figure even when output is captured: the figures are what these suites measure."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        print(line, flush=True)
