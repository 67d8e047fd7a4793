"""Prometheus metrics of a real `entrepot serve` on their own port (ENTREPOT_METRICS_PORT).

With one worker the listener serves the serving process's registry; with two,
each worker writes its samples to prometheus_client's multiprocess files and
the serve process sums them, including those of a worker that died.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_serve import free_port, serving

pytestmark = pytest.mark.slow

ADMIN = "e2e-metrics-admin-" + uuid.uuid4().hex
ROUTE = "/v1/datasets"


def env_for(url: str, metrics_port: int) -> dict[str, str]:
    return {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_METRICS_PORT": str(metrics_port),
    }


def list_datasets(base: str) -> None:
    """One request on a new connection (so either worker may accept it)."""
    response = httpx.get(f"{base}{ROUTE}", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 200, response.text


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def listed(text: str) -> float:
    """``entrepot_http_requests_total`` of GET /v1/datasets answered 200, in Prometheus text."""
    want = {"method": "GET", "route": ROUTE, "status": "200", "app": "admin"}
    return sum(v for labels, v in samples(text, "entrepot_http_requests_total") if labels == want)


def scrape(metrics_port: int) -> str:
    response = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def eventually(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(0.1)


def test_one_worker_serves_metrics_on_their_own_port(
    tmp_path: Path, fresh_database: object
) -> None:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    metrics_port = free_port()
    with serving(env_for(url, metrics_port), log=tmp_path / "serve.log") as base:
        list_datasets(base)
        text = scrape(metrics_port)
        assert "entrepot_http_requests_total" in text
        assert listed(text) == 1
        assert "process_resident_memory_bytes" in text  # one worker: the serving process itself
        on_api = httpx.get(f"{base}/metrics")
        assert on_api.status_code == 404
        assert "entrepot_http_requests_total" not in on_api.text
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/").status_code == 404


def test_two_workers_are_summed_even_after_one_dies(tmp_path: Path, fresh_database: object) -> None:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    metrics_port = free_port()
    log = tmp_path / "serve.log"
    env = env_for(url, metrics_port) | {"ENTREPOT_POOL_MAX_SIZE": "3"}
    with serving(env, "--workers", "2", log=log) as base:
        api_port = base.rsplit(":", 1)[1]
        [serve] = [
            p
            for p in psutil.process_iter(["cmdline"])
            if "serve" in (p.info["cmdline"] or []) and api_port in (p.info["cmdline"] or [])
        ]

        def workers() -> list[psutil.Process]:
            """The live spawned workers (a killed one is a zombie until uvicorn reaps it)."""
            found = []
            for child in serve.children():
                try:
                    if "spawn_main" in " ".join(child.cmdline()):
                        found.append(child)
                except psutil.NoSuchProcess:  # ZombieProcess is one too
                    pass  # killed, or reaped between listing the children and reading it
            return found

        eventually(lambda: len(workers()) == 2, 30, "two workers")
        directory = Path(workers()[0].environ()["PROMETHEUS_MULTIPROC_DIR"])

        def listed_by(pid: int) -> float:
            merged = MultiProcessCollector.merge([str(directory / f"counter_{pid}.db")])
            want = {"method": "GET", "route": ROUTE, "status": "200", "app": "admin"}
            return sum(
                s.value
                for family in merged
                for s in family.samples
                if s.name == "entrepot_http_requests_total" and s.labels == want
            )

        pids = [w.pid for w in workers()]
        sent = 0
        while sent < 400 and not all(
            (directory / f"counter_{pid}.db").exists() and listed_by(pid) > 0 for pid in pids
        ):
            list_datasets(base)
            sent += 1
        shares = [listed_by(pid) for pid in pids]
        assert all(n > 0 for n in shares), f"one worker served every request: {shares}"
        text = scrape(metrics_port)
        assert listed(text) == sum(shares) == sent
        [(labels, _)] = samples(text, "entrepot_webhook_queue_depth")
        assert "pid" not in labels, "the gauge is one series, not one per worker"
        # Each worker has pools of its own: the replica's are their sum (the request
        # pool's 3 a worker, of which the planned pool takes its share).
        pools = [
            (labels, v)
            for labels, v in samples(text, "entrepot_db_pool_max_connections")
            if labels["pool"] in ("requests", "planned")
        ]
        assert sorted(labels["pool"] for labels, _ in pools) == ["planned", "requests"]
        assert all("pid" not in labels for labels, _ in pools)
        assert sum(v for _, v in pools) == 2 * 3
        assert "process_resident_memory_bytes" not in text  # per-process metrics do not merge

        dead = pids[0]
        os.kill(dead, signal.SIGKILL)
        eventually(
            lambda: len(workers()) == 2 and dead not in {w.pid for w in workers()},
            30,
            "uvicorn replaces the dead worker",
        )
        eventually(lambda: httpx.get(f"{base}/readyz").status_code == 200, 30, "ready again")
        text = scrape(metrics_port)
        assert listed(text) == sent, "the dead worker's counts stay in the sum"
        assert not list(directory.glob(f"gauge_live*_{dead}.db")), "its gauges are gone"
        list_datasets(base)
        assert listed(scrape(metrics_port)) == sent + 1
    assert not directory.exists(), "serve removes its multiprocess directory on exit"
