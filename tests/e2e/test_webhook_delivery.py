"""Webhook delivery end to end: `entrepot serve` processes POSTing to a real receiver.

The receiver is a small HTTP server on 127.0.0.1 that verifies every delivery
with the `standardwebhooks` library (the reference implementation receivers
use), so a signature that library refuses fails the test. Retry schedules are
shortened to seconds through ENTREPOT_WEBHOOK_RETRY_SCHEDULE, and loopback is
allowed through ENTREPOT_WEBHOOK_ALLOWED_NETWORKS, as an operator would.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.e2e.test_serve import free_port, serving
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

ADMIN = "e2e-webhooks-admin-token-0123456789abcdef"  # 32+ characters, as serve requires
ALLOW_LOOPBACK = "127.0.0.0/8"
SCHEDULE = "0,0.5,0.5,1,1,1,1,1,1,1,1,1,1,1,1,1"  # 16 attempts within ~13 s
SCHEMA = {
    "type": "object",
    "properties": {"k": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["k"],
}
OPEN = {"pending", "delivering"}  # delivery states that may still send something
SMALL_POOL = {"ENTREPOT_POOL_MAX_SIZE": "6"}  # three replicas share one PostgreSQL
APP_SCOPES = ["datasets:read", "records:read", "changes:read", "webhooks:manage"]


# --- the receiver ---------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    message_id: str
    signature: str
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]
    verified: bool
    answered: int
    at: float


Respond = Callable[[], tuple[int, bytes]]


@dataclass
class Receiver:
    """A webhook endpoint verifying each delivery with `standardwebhooks` against
    every secret in ``secrets`` (any one matching is enough, as during a rotation)."""

    secrets: list[str] = field(default_factory=list)
    respond: Respond = lambda: (200, b"ok")
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                code, reply = receiver.respond()
                receiver.note(raw, headers, code)
                self.send_response(code)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?source=entrepot"

    def verified_by(self, secret: str, raw: bytes, headers: dict[str, str]) -> bool:
        try:
            Webhook(secret).verify(raw, headers)
        except WebhookVerificationError:
            return False
        return True

    def note(self, raw: bytes, headers: dict[str, str], code: int) -> None:
        with self.lock:
            secrets = list(self.secrets)
        verified = any(self.verified_by(s, raw, headers) for s in secrets)
        item = Received(
            message_id=headers.get("webhook-id", ""),
            signature=headers.get("webhook-signature", ""),
            body=orjson.loads(raw),
            raw=raw,
            headers=headers,
            verified=verified,
            answered=code,
            at=time.time(),
        )
        with self.lock:
            self.received.append(item)

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def accepted(self) -> list[Received]:
        return [r for r in self.snapshot() if 200 <= r.answered < 300]

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        """The accepted deliveries once there are ``count`` distinct ones (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            accepted = self.accepted()
            if len({r.message_id for r in accepted}) >= count:
                return accepted
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(accepted)} deliveries of {count} after {timeout} s")
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# --- the platform ---------------------------------------------------------------------


def env_for(url: str, **extra: str) -> dict[str, str]:
    return {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_WEBHOOK_ALLOWED_NETWORKS": ALLOW_LOOPBACK,
        "ENTREPOT_WEBHOOK_RETRY_SCHEDULE": SCHEDULE,
        **extra,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fresh_database: object) -> Iterator[str]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    log = tmp_path_factory.mktemp("webhooks") / "serve.log"
    with serving(env_for(url), log=log) as base:
        yield base


def admin(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)


@dataclass
class Setup:
    base: str
    dataset: str
    app_id: str
    app_key: str

    def as_app(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {self.app_key}"}, timeout=30
        )

    def subscribe(self, receiver: Receiver, **extra: Any) -> dict[str, Any]:
        with self.as_app() as app:
            created = app.post(
                f"/v1/apps/{self.app_id}/webhooks",
                json={"url": receiver.url, "datasets": [self.dataset], **extra},
            )
        assert created.status_code == 201, created.text
        body: dict[str, Any] = created.json()
        receiver.secrets.append(body["secret"])
        return body

    def feed(self, after: int = 0) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = []
        with self.as_app() as app:
            while True:
                page = app.get(
                    f"/v1/datasets/{self.dataset}/changes", params={"after": after, "limit": 1000}
                )
                assert page.status_code == 200, page.text
                got = page.json()["changes"]
                if not got:
                    return changes
                changes += got
                after = got[-1]["seq"]


def setup(base: str) -> Setup:
    stamp = time.monotonic_ns()
    with admin(base) as a:
        org = a.post("/v1/orgs", json={"name": f"org-{stamp}", "title": "Org"})
        assert org.status_code == 201, org.text
        ds = a.post(
            "/v1/datasets",
            json={
                "name": f"ds-{stamp}",
                "org": f"org-{stamp}",
                "title": "Things",
                "schema": SCHEMA,
                "primary_key": "k",
            },
        )
        assert ds.status_code == 201, ds.text
        app = a.post(
            "/v1/apps", json={"org": f"org-{stamp}", "name": "hooks", "scopes": APP_SCOPES}
        )
        assert app.status_code == 201, app.text
        key = a.post(f"/v1/apps/{app.json()['id']}/keys", json={"name": "hooks"})
        assert key.status_code == 201, key.text
    return Setup(base, f"ds-{stamp}", app.json()["id"], key.json()["key"])


def write_history(s: Setup, records: int, rounds: int) -> None:
    """Creates, updates and (for every third record) a final delete."""
    with admin(s.base) as a:
        url = f"/v1/datasets/{s.dataset}/records"
        for n in range(rounds):
            for i in range(records):
                r = a.put(f"{url}/r{i}", json={"k": f"r{i}", "n": n})
                assert r.status_code in (200, 201), r.text
        for i in range(0, records, 3):
            assert a.delete(f"{url}/r{i}").status_code == 204


def expected_event(change: dict[str, Any]) -> str:
    if change["op"] == "delete":
        return "record.deleted"
    return "record.created" if change["version"] == 1 else "record.updated"


def assert_in_order_per_record(accepted: list[Received]) -> None:
    by_record: dict[str, list[int]] = defaultdict(list)
    for r in accepted:
        by_record[r.body["data"]["id"]].append(r.body["data"]["seq"])
    for record_id, seqs in by_record.items():
        firsts = list(dict.fromkeys(seqs))  # a genuine duplicate repeats a seq already seen
        assert firsts == sorted(firsts), f"{record_id} delivered out of order: {seqs}"


def deliveries(s: Setup, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
    with s.as_app() as app:
        page = app.get(f"/v1/webhooks/{webhook_id}/deliveries", params={"limit": 1000, **params})
    assert page.status_code == 200, page.text
    data: list[dict[str, Any]] = page.json()["data"]
    return data


def settled(s: Setup, webhook_id: str, count: int) -> list[dict[str, Any]]:
    """The delivery log once it holds ``count`` deliveries and none is still open.

    A receiver notes a delivery before it answers; the worker records the outcome
    only after the answer, so the log lags the receiver a little."""

    def finished() -> list[dict[str, Any]] | None:
        log = deliveries(s, webhook_id)
        return log if len(log) >= count and not any(d["status"] in OPEN for d in log) else None

    return wait_until(finished, f"{count} deliveries of webhook {webhook_id} all finished")


# --- the behaviour --------------------------------------------------------------------


def test_every_event_arrives_signed_as_the_feed_shows_it(server: str, receiver: Receiver) -> None:
    s = setup(server)
    hook = s.subscribe(receiver)
    write_history(s, records=6, rounds=3)
    feed = s.feed()
    accepted = receiver.wait_for(len(feed))

    assert all(r.verified for r in receiver.snapshot()), "a delivery failed verification"
    assert len(accepted) == len(feed)
    by_seq = {c["seq"]: c for c in feed}
    for r in accepted:
        change = by_seq[r.body["data"]["seq"]]
        assert r.body["data"] == {"dataset": s.dataset, **change}
        assert r.body["type"] == expected_event(change)
        assert r.body["timestamp"] == change["at"]
        assert r.headers["content-type"] == "application/json"
    types = Counter(r.body["type"] for r in accepted)
    assert types == {"record.created": 6, "record.updated": 12, "record.deleted": 2}
    assert len({r.message_id for r in accepted}) == len(feed)
    assert_in_order_per_record(accepted)
    settled(s, hook["id"], len(feed))
    log = deliveries(s, hook["id"], status="delivered")
    assert len(log) == len(feed)
    assert {d["last_status_code"] for d in log} == {200}
    assert {d["attempts"] for d in log} == {1}


def test_a_receiver_down_for_a_while_gets_everything_in_order_per_record(
    server: str, receiver: Receiver
) -> None:
    # The outage is the behaviour under test: 4 s counted from the first delivery the
    # receiver sees (not from the test's start, which a slow setup could use up).
    lock = threading.Lock()
    down_until: list[float] = []

    def flaky() -> tuple[int, bytes]:
        now = time.monotonic()
        with lock:
            if not down_until:
                down_until.append(now + 4.0)
        if now < down_until[0]:
            return 500, b"down for maintenance " * 100
        return 200, b"ok"

    receiver.respond = flaky
    s = setup(server)
    hook = s.subscribe(receiver, events=["record.created", "record.updated"])
    write_history(s, records=5, rounds=4)
    feed = [c for c in s.feed() if c["op"] == "upsert"]  # deletes are not subscribed
    accepted = receiver.wait_for(len(feed), timeout=60)

    received = receiver.snapshot()
    assert all(r.verified for r in received)
    assert any(r.answered == 500 for r in received), "the receiver was never down"
    assert {r.body["data"]["seq"] for r in accepted} == {c["seq"] for c in feed}, "lost events"
    assert_in_order_per_record(accepted)
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for r in received:
        bodies[r.message_id].add(orjson.dumps(r.body["data"]))
    assert all(len(b) == 1 for b in bodies.values()), "a webhook-id carried two events"
    retried = [d for d in settled(s, hook["id"], len(feed)) if d["attempts"] > 1]
    assert retried, "no delivery needed a retry"
    assert all(d["status"] == "delivered" for d in retried)
    redelivered = Counter(r.message_id for r in received)
    assert any(n > 1 for n in redelivered.values()), "retries reuse the webhook-id"


def test_a_receiver_answering_410_disables_the_webhook_and_loses_nothing(
    server: str, receiver: Receiver
) -> None:
    """410 disables the webhook; re-enabled, it gets the refused event again and then
    every change committed meanwhile, in order."""
    receiver.respond = lambda: (410, b"gone")
    s = setup(server)
    hook = s.subscribe(receiver)
    # A second, healthy webhook on the same dataset: once it has every change, the
    # dispatcher has been through them, so "nothing queued while disabled" is checked
    # after the fact rather than before the dispatcher could have queued anything.
    control = Receiver()
    with admin(server) as a, ExitStack() as closing:
        closing.callback(control.close)
        control_hook = s.subscribe(control)
        a.put(f"/v1/datasets/{s.dataset}/records/a", json={"k": "a"})

        def disabled() -> dict[str, Any] | None:
            state: dict[str, Any] = a.get(f"/v1/webhooks/{hook['id']}").json()
            return state if state["disabled"] else None

        state = wait_until(disabled, "the webhook disabled after its receiver's 410")
        assert "410" in state["disabled_reason"]
        for i in range(3):
            a.put(f"/v1/datasets/{s.dataset}/records/b{i}", json={"k": f"b{i}"})
        a.patch(f"/v1/datasets/{s.dataset}/records/a", json={"k": "a", "n": 2})
        control.wait_for(5)
        settled(s, control_hook["id"], 5)
        [first] = deliveries(s, hook["id"])  # nothing more is queued while disabled
        assert (first["status"], first["last_status_code"]) == ("cancelled", 410)
        audit = a.get("/v1/audit", params={"action": "webhook.disabled"}).json()["data"]
        assert any(e["target"] == f"webhook:{hook['id']}" for e in audit)
        assert len(receiver.snapshot()) == 1

        receiver.respond = lambda: (200, b"ok")
        with s.as_app() as app:
            enabled = app.patch(f"/v1/webhooks/{hook['id']}", json={"disabled": False})
        assert enabled.status_code == 200, enabled.text
        accepted = receiver.wait_for(5)
        assert sorted((r.body["data"]["seq"], r.body["data"]["id"]) for r in accepted) == [
            (1, "a"),
            (2, "b0"),
            (3, "b1"),
            (4, "b2"),
            (5, "a"),
        ]
        assert_in_order_per_record(accepted)  # parallel across records, ordered per record
        assert accepted[0].message_id == receiver.snapshot()[0].message_id  # the same event
        assert all(d["status"] == "delivered" for d in settled(s, hook["id"], 5))


def test_rotation_signs_with_both_secrets_during_the_overlap(
    server: str, receiver: Receiver
) -> None:
    s = setup(server)
    hook = s.subscribe(receiver)
    old = hook["secret"]
    with s.as_app() as app:
        rotated = app.post(
            f"/v1/webhooks/{hook['id']}/rotate-secret", json={"overlap_seconds": 600}
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old
        assert new.startswith("whsec_")
        with admin(server) as a:
            a.put(f"/v1/datasets/{s.dataset}/records/x", json={"k": "x"})
        [during] = receiver.wait_for(1)
        assert len(during.signature.split(" ")) == 2
        assert receiver.verified_by(old, during.raw, during.headers)
        assert receiver.verified_by(new, during.raw, during.headers)

        again = app.post(f"/v1/webhooks/{hook['id']}/rotate-secret", json={"overlap_seconds": 0})
        assert again.status_code == 200, again.text
        newest = again.json()["secret"]
        with admin(server) as a:
            a.put(f"/v1/datasets/{s.dataset}/records/y", json={"k": "y"})
        after = receiver.wait_for(2)[-1]
        assert len(after.signature.split(" ")) == 1
        assert receiver.verified_by(newest, after.raw, after.headers)
        assert not receiver.verified_by(new, after.raw, after.headers)
        assert not receiver.verified_by(old, after.raw, after.headers)


# --- three replicas -------------------------------------------------------------------


def delivered_by(metrics_port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith('entrepot_webhook_deliveries_total{outcome="delivered"}'):
            return float(line.split()[-1])
    return 0.0


def test_three_replicas_deliver_each_event_once(
    tmp_path: Path, fresh_database: object, receiver: Receiver
) -> None:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    metrics_ports = [free_port() for _ in range(3)]
    with ExitStack() as stack:
        bases = [
            stack.enter_context(
                serving(
                    env_for(url, **SMALL_POOL, ENTREPOT_METRICS_PORT=str(metrics_ports[i])),
                    log=tmp_path / f"replica-{i}.log",
                )
            )
            for i in range(3)
        ]
        s = setup(bases[0])
        hook = s.subscribe(receiver)
        records, writes = 40, 600

        def write(i: int) -> None:
            base = bases[i % 3]
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
            ) as a:
                for j in range(i, writes, 12):
                    r = a.put(
                        f"/v1/datasets/{s.dataset}/records/r{j % records}",
                        json={"k": f"r{j % records}", "n": j},
                    )
                    assert r.status_code in (200, 201), r.text

        with ThreadPoolExecutor(12) as pool:
            list(pool.map(write, range(12)))
        feed = s.feed()
        assert len(feed) == writes
        accepted = receiver.wait_for(writes, timeout=90)
        # Every delivery finished in the store, and every replica has counted its own.
        settled(s, hook["id"], writes)

        def counted() -> bool:
            return sum(delivered_by(p) for p in metrics_ports) >= writes

        wait_until(counted, f"the replicas' delivered counters adding up to {writes}")
        # A quiet window, not a guess at when delivery ends (that is waited for above).
        # Of two concurrent attempts at one delivery (the bug looked for here) one
        # finishes against a lease it no longer holds and leaves no trace in the store
        # or the counters: only the receiver sees it, shortly after the other.
        time.sleep(1.0)
        counts = Counter(r.message_id for r in receiver.snapshot())
        assert len(counts) == writes
        twice = {m: n for m, n in counts.items() if n > 1}
        assert not twice, f"delivered more than once without a failed attempt: {twice}"
        assert all(r.verified for r in accepted)
        assert_in_order_per_record(accepted)
        shares = [delivered_by(p) for p in metrics_ports]
        assert sum(shares) == writes
        assert sum(1 for n in shares if n > 0) >= 2, f"one replica did all the work: {shares}"
        latencies = sorted(
            r.at - datetime.fromisoformat(r.body["timestamp"]).timestamp() for r in accepted
        )
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(
            f"\nwebhook e2e latency, 3 replicas: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        )
