"""HTTP and bulk-job metrics, served on the metrics listener (ops/metrics_server.py),
never the API port."""

from __future__ import annotations

import asyncio
from typing import Literal

from prometheus_client import Counter, Histogram
from starlette.requests import ClientDisconnect

REQUESTS = Counter(
    "entrepot_http_requests_total",
    "HTTP requests by method, route, status and calling app (an app's id; user, admin or "
    "anonymous otherwise)",
    ["method", "route", "status", "app"],
)
REQUEST_SECONDS = Histogram(
    "entrepot_http_request_duration_seconds",
    "HTTP request latency by method and route",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BULK_REFUSED = Counter(
    "entrepot_bulk_refused_total",
    "Imports and exports refused before they started: caller (over its share, 429) or "
    "busy (no bulk connection free in time, 503)",
    ["reason"],
)
BULK_CUT = Counter(
    "entrepot_bulk_cut_total",
    "Imports and exports cut because their client moved data slower than the floor "
    "(ENTREPOT_BULK_MIN_BYTES_PER_SECOND over ENTREPOT_BULK_STALL_SECONDS)",
    ["direction"],
)
BULK_STARTED = Counter(
    "entrepot_bulk_jobs_started_total",
    "Bulk jobs admitted to the bulk pool, by kind (import, export, audit_export)",
    ["kind"],
)
BULK_FINISHED = Counter(
    "entrepot_bulk_jobs_finished_total",
    "Bulk jobs ended, by kind and outcome: completed, failed (an error or a refused "
    "import), abandoned (the client left, or the job was cancelled)",
    ["kind", "outcome"],
)
BULK_ROWS = Counter(
    "entrepot_bulk_rows_total",
    "Rows moved by bulk jobs: import inserted, updated and failed (of committed imports), "
    "export and audit_export exported",
    ["kind", "result"],
)

BulkKind = Literal["import", "export", "audit_export"]


class bulk_job:  # a function to its callers, usable in `with` and `async with` alike
    """Count a bulk job from its admission to its end, whichever way it ends.

    An export is a generator: a client that leaves closes it (GeneratorExit at
    its ``yield``); an importing client that leaves mid-body ends its body
    (ClientDisconnect); a server that stops cancels both: all ``abandoned``.
    Asynchronous too, so it joins the ``async with`` that admits the job.
    """

    __slots__ = ("_kind",)

    def __init__(self, kind: BulkKind) -> None:
        self._kind = kind

    def __enter__(self) -> None:
        BULK_STARTED.labels(self._kind).inc()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            outcome = "completed"
        elif issubclass(exc_type, GeneratorExit | asyncio.CancelledError | ClientDisconnect):
            outcome = "abandoned"
        else:
            outcome = "failed"
        BULK_FINISHED.labels(self._kind, outcome).inc()

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.__exit__(exc_type, *rest)
