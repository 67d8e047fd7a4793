"""`entrepot serve` as a user runs it: a real process, a real port."""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from tests.waiting import wait_until

pytestmark = pytest.mark.slow

PR_SET_PDEATHSIG = 1  # prctl(2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """In a child before it runs: SIGKILL it when the test process dies, so a test ended
    by its timeout (pytest-timeout exits at once) leaves no server behind (Linux)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(env: dict[str, str], *args: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`entrepot serve` on ``port`` with ``env`` (and no other ENTREPOT_* of ours), its
    output to ``log``; returns at once (:func:`wait_ready` waits for it)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    full_env.update(env)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "entrepot", "serve", "--port", str(port), *args],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )


def wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path, within: float = 60) -> None:
    """Until ``base`` answers /readyz 200; fails if the process exits first or never does."""
    deadline = time.monotonic() + within
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"serve never became ready:\n{log.read_text()}")
        time.sleep(0.2)


@contextmanager
def serving(env: dict[str, str], *args: str, log: Path) -> Iterator[str]:
    with serving_process(env, *args, log=log) as (base, _):
        yield base


@contextmanager
def serving_process(
    env: dict[str, str], *args: str, log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`serving`, with the server's process too (its pid, to watch its memory)."""
    port = free_port()
    log.unlink(missing_ok=True)
    proc = spawn(env, *args, port=port, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base, log)
        yield base, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


def postgres_running_under(directory: Path) -> bool:
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.info["name"] == "postgres" and str(directory) in " ".join(p.info["cmdline"] or []):
            return True
    return False


def test_serve_on_embedded_postgres_from_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "serve.log"
    env = {"ENTREPOT_DATA_DIR": str(data_dir), "ENTREPOT_LOG_FORMAT": "console"}
    with serving(env, log=log) as base:
        # Shown once the server answers, after its start-up lines.
        match = wait_until(
            lambda: re.search(r"^\s+(ent_\S+)$", log.read_text(), re.MULTILINE),
            "the first start's admin key in the log",
        )
        auth = {"Authorization": f"Bearer {match.group(1)}"}
        assert (
            httpx.post(
                f"{base}/v1/orgs", json={"name": "acme", "title": "Acme"}, headers=auth
            ).status_code
            == 201
        )
        schema = {"type": "object", "properties": {"k": {"type": "string"}}, "required": ["k"]}
        created = httpx.post(
            f"{base}/v1/datasets",
            json={
                "name": "things",
                "org": "acme",
                "title": "Things",
                "schema": schema,
                "primary_key": "k",
            },
            headers=auth,
        )
        assert created.status_code == 201, created.text
        put = httpx.put(f"{base}/v1/datasets/things/records/one", json={"k": "one"}, headers=auth)
        assert put.status_code == 201
    assert not postgres_running_under(data_dir), "the embedded server stops with serve"

    with serving(env, log=log) as base:
        assert "ent_" not in log.read_text(), "the admin key is printed on first start only"
        again = httpx.get(f"{base}/v1/datasets/things/records/one", headers=auth)
        assert again.status_code == 200
        assert again.json()["data"] == {"k": "one"}


def test_serve_on_external_postgres_with_two_workers(
    tmp_path: Path, fresh_database: object
) -> None:
    import asyncio

    url = asyncio.run(fresh_database())  # type: ignore[operator]
    token = "e2e-admin-token-0123456789abcdef0123"
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": token,
        "ENTREPOT_LOG_FORMAT": "console",
    }
    with serving(env, "--workers", "2", log=tmp_path / "serve.log") as base:
        auth = {"Authorization": f"Bearer {token}"}
        statuses = {httpx.get(f"{base}/v1/datasets", headers=auth).status_code for _ in range(20)}
        assert statuses == {200}
        assert (
            httpx.get(f"{base}/v1/datasets", headers={"Authorization": "Bearer x"}).status_code
            == 401
        )
