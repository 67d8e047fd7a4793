"""SIGTERM, as a load balancer needs it (ops/lifecycle.py): `/readyz` fails at once,
requests are still served for ``ENTREPOT_DRAIN_SECONDS``, then long polls answer
what they have and event streams end (their clients go elsewhere), and the process
exits, long before any long poll's own wait would have ended."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_serve import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

TOKEN = "e2e-drain-token-0123456789abcdef01234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DRAIN = 3.0
SCHEMA = {"type": "object", "properties": {"k": {"type": "string"}}}


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path


@contextmanager
def served(tmp_path: Path, fresh_database: object, workers: int = 1) -> Iterator[Served]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    env.update(
        {
            "ENTREPOT_DATABASE_URL": url,
            "ENTREPOT_BOOTSTRAP_TOKEN": TOKEN,
            "ENTREPOT_DRAIN_SECONDS": str(DRAIN),
            "ENTREPOT_FEED_HEARTBEAT_SECONDS": "30",
        }
    )
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "entrepot",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited early:\n{log.read_text()}")
            try:
                return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, "entrepot serve answers /readyz")
        yield Served(proc, base, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@dataclass
class Waiting:
    """A request left waiting in a thread: what it got, and when."""

    thread: threading.Thread | None = None
    status: int | None = None
    body: str = ""
    lines: list[str] = field(default_factory=list)
    ended_at: float | None = None


def long_poll(base: str, ds: str) -> Waiting:
    waiting = Waiting()

    def run() -> None:
        answer = httpx.get(
            f"{base}/v1/datasets/{ds}/changes",
            params={"after": 1, "wait": 60},
            headers=AUTH,
            timeout=90,
        )
        waiting.status, waiting.body = answer.status_code, answer.text
        waiting.ended_at = time.monotonic()

    waiting.thread = threading.Thread(target=run, daemon=True)
    waiting.thread.start()
    return waiting


def event_stream(base: str, ds: str) -> Waiting:
    waiting = Waiting()
    opened = threading.Event()

    def run() -> None:
        headers = {**AUTH, "Accept": "text/event-stream", "Last-Event-ID": "1"}
        with httpx.stream(
            "GET", f"{base}/v1/datasets/{ds}/changes", headers=headers, timeout=90
        ) as answer:
            waiting.status = answer.status_code
            for line in answer.iter_lines():
                waiting.lines.append(line)
                opened.set()
        waiting.ended_at = time.monotonic()

    waiting.thread = threading.Thread(target=run, daemon=True)
    waiting.thread.start()
    assert opened.wait(30), "the event stream never opened"
    return waiting


def dataset_with_a_record(base: str) -> str:
    org = httpx.post(f"{base}/v1/orgs", json={"name": "drain", "title": "D"}, headers=AUTH)
    assert org.status_code == 201, org.text
    ds = httpx.post(
        f"{base}/v1/datasets",
        json={"name": "things", "org": "drain", "title": "T", "schema": SCHEMA},
        headers=AUTH,
    )
    assert ds.status_code == 201, ds.text
    put = httpx.put(f"{base}/v1/datasets/things/records/one", json={"k": "one"}, headers=AUTH)
    assert put.status_code == 201, put.text
    return "things"


def test_sigterm_drains_then_ends_what_waits_and_exits(
    tmp_path: Path, fresh_database: object
) -> None:
    with served(tmp_path, fresh_database) as server:
        ds = dataset_with_a_record(server.base)
        poll = long_poll(server.base, ds)
        stream = event_stream(server.base, ds)

        server.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        def not_ready() -> bool:
            return httpx.get(f"{server.base}/readyz", timeout=2).status_code == 503

        wait_until(not_ready, "/readyz answers 503 once SIGTERM arrives", within=DRAIN)
        # Still serving while the balancer notices: a new connection, a real request.
        with httpx.Client(base_url=server.base, headers=AUTH) as fresh:
            assert fresh.get(f"/v1/datasets/{ds}/records/one").status_code == 200
        assert poll.ended_at is None, "a long poll ended before the drain did"

        assert server.proc.wait(timeout=DRAIN + 20) == 0, server.log.read_text()
        for waiting in (poll, stream):
            assert waiting.thread is not None
            waiting.thread.join(timeout=10)
        assert poll.status == 200, poll.body
        assert '"changes":[]' in poll.body
        assert poll.ended_at is not None
        assert poll.ended_at - signalled < DRAIN + 10
        assert stream.status == 200
        assert ": this replica is stopping: reconnect" in stream.lines, stream.lines
        assert stream.ended_at is not None
        assert stream.ended_at - signalled < DRAIN + 10
        assert "draining" in server.log.read_text()


def test_a_second_sigterm_stops_without_waiting_out_the_drain(
    tmp_path: Path, fresh_database: object
) -> None:
    with served(tmp_path, fresh_database) as server:
        server.proc.send_signal(signal.SIGTERM)
        wait_until(
            lambda: httpx.get(f"{server.base}/readyz", timeout=2).status_code == 503,
            "/readyz answers 503",
        )
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=20) == 0, server.log.read_text()
        assert time.monotonic() - started < DRAIN


def test_workers_drain_too(tmp_path: Path, fresh_database: object) -> None:
    """With --workers 2 the supervisor passes SIGTERM on to each worker, which drains."""
    with served(tmp_path, fresh_database, workers=2) as server:
        server.proc.send_signal(signal.SIGTERM)
        wait_until(
            lambda: httpx.get(f"{server.base}/readyz", timeout=2).status_code == 503,
            "/readyz answers 503 on the workers",
            within=DRAIN,
        )
        assert httpx.get(f"{server.base}/v1/datasets", headers=AUTH).status_code == 200
        server.proc.wait(timeout=DRAIN + 20)


def test_ctrl_c_does_not_drain_and_is_not_held_up_by_a_long_poll(
    tmp_path: Path, fresh_database: object
) -> None:
    with served(tmp_path, fresh_database) as server:
        ds = dataset_with_a_record(server.base)
        poll = long_poll(server.base, ds)
        stream = event_stream(server.base, ds)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGINT)
        server.proc.wait(timeout=20)
        assert time.monotonic() - started < DRAIN, "SIGINT waited out the drain"
        for waiting in (poll, stream):
            assert waiting.thread is not None
            waiting.thread.join(timeout=10)
            assert waiting.ended_at is not None
        assert poll.status == 200, poll.body
