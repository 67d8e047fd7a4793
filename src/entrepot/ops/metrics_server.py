"""The Prometheus listener: metrics on a port of their own, never on the API port.

With one worker, uvicorn runs the app in the ``entrepot serve`` process, so the
listener serves that process's default registry. With several, each worker is
a spawned process: it starts in prometheus_client's multiprocess mode (the
``PROMETHEUS_MULTIPROC_DIR`` set here, before uvicorn spawns it) and writes its
samples to files there; the serve process (uvicorn's supervisor, which serves
no requests) merges them on each scrape. Counters and histograms are summed
over every worker that ran since the start, the gauges (declared
``livemostrecent``) report the latest value a live worker set, and process and
runtime metrics (``process_*``, ``python_*``) are absent, as in any
multiprocess setup. See docs/operations.md.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PATH = "/metrics"

WSGIApp = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]


class MetricsListenerError(RuntimeError):
    """The listener could not bind; the message says where and which settings to check."""


class _Workers:
    """Every worker's samples, merged; the live gauges of workers that exited are dropped first.

    uvicorn has no hook for a worker's exit, so each scrape checks the pids
    that own live-gauge files and calls ``mark_process_dead`` for those gone.
    Counters and histograms of exited workers stay: their counts happened.
    """

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._merged = MultiProcessCollector(None, path=directory)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        for pid in _gauge_pids(self._directory):
            if not _alive(pid):
                mark_process_dead(pid, self._directory)  # type: ignore[no-untyped-call]
        return cast(Iterable[Metric], self._merged.collect())  # type: ignore[no-untyped-call]


def _gauge_pids(directory: str) -> set[int]:
    """Pids with live-mode gauge files (``gauge_livemostrecent_<pid>.db`` and the like)."""
    pids = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        pid = os.path.basename(path).removesuffix(".db").rpartition("_")[2]
        if pid.isdigit():
            pids.add(int(pid))
    return pids


def _alive(pid: int) -> bool:
    """Signal 0 checks without reaping: waiting on uvicorn's children is uvicorn's job."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid was reused by another user's process: ours is gone
        return False
    return True


def _only_metrics(metrics: WSGIApp) -> WSGIApp:
    """Answer ``/metrics`` and 404 elsewhere (prometheus_client's app answers every path)."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not found: metrics are at /metrics\n"]
        return metrics(environ, start_response)

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in flight never holds up shutdown


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes every few seconds would drown the access log; the API logs its requests."""


def _listen(host: str, port: int, registry: CollectorRegistry) -> WSGIServer:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

    class _ForHost(_Server):
        address_family = family  # an IPv6 host needs AF_INET6; WSGIServer assumes AF_INET

    app = _only_metrics(cast(WSGIApp, make_wsgi_app(registry)))
    server = make_server(host, port, app, _ForHost, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


@contextmanager
def metrics_listener(host: str, port: int | None, workers: int) -> Iterator[None]:
    """Serve ``GET /metrics`` on ``host:port`` while the block runs (nothing if ``port`` is None).

    Enter it before uvicorn starts its workers: with ``workers > 1`` it points
    them at a fresh, empty multiprocess directory, removed again on exit.
    """
    if port is None:
        yield
        return
    directory: str | None = None
    registry = REGISTRY
    if workers > 1:
        directory = tempfile.mkdtemp(prefix="entrepot-metrics-")
        os.environ[MULTIPROC_ENV] = directory
        registry = CollectorRegistry()
        registry.register(_Workers(directory))
    try:
        try:
            server = _listen(host, port, registry)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise MetricsListenerError(
                f"cannot listen for metrics on {host}:{port} ({reason.lower()}); "
                "check ENTREPOT_METRICS_PORT and ENTREPOT_METRICS_HOST"
            ) from None
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()
    finally:
        if directory is not None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(directory, ignore_errors=True)
