"""The metrics listener in this process: GET /metrics only, its own port, clean exits."""

from __future__ import annotations

import os
import socket

import httpx
import pytest

import entrepot.ops.metrics  # noqa: F401 - registers the HTTP metrics in the default registry
from entrepot.ops.metrics_server import MULTIPROC_ENV, MetricsListenerError, metrics_listener


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_one_worker_serves_the_default_registry_at_metrics_only() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with metrics_listener("127.0.0.1", port, workers=1):
        scraped = httpx.get(f"{base}/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        assert "# TYPE entrepot_http_requests_total counter" in scraped.text
        assert "process_resident_memory_bytes" in scraped.text  # this process's own metrics
        assert httpx.get(f"{base}/").status_code == 404
        assert httpx.get(f"{base}/metrics/extra").status_code == 404
        assert httpx.post(f"{base}/metrics").status_code == 405
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/metrics")


def test_no_port_no_listener() -> None:
    with metrics_listener("127.0.0.1", None, workers=4):
        assert MULTIPROC_ENV not in os.environ


def test_a_taken_port_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(MetricsListenerError, match=f"127.0.0.1:{port}.*ENTREPOT_METRICS_PORT"),
            metrics_listener("127.0.0.1", port, workers=2),
        ):
            pass
    assert MULTIPROC_ENV not in os.environ


def test_several_workers_get_a_fresh_directory_removed_at_exit() -> None:
    port = free_port()
    with metrics_listener("127.0.0.1", port, workers=2):
        directory = os.environ[MULTIPROC_ENV]
        assert os.path.isdir(directory)
        assert os.listdir(directory) == []
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        assert "process_resident_memory_bytes" not in scraped.text  # the workers' files only
    assert MULTIPROC_ENV not in os.environ
    assert not os.path.exists(directory)
