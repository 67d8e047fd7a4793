"""HTTP and bulk-job metrics (bulk jobs counted by streaming.bulk_job), served on the
metrics listener (ops/metrics_server.py), never the API port."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
