"""HTTP metrics, served on the metrics listener (ops/metrics_server.py), never the API port."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "entrepot_http_requests_total",
    "HTTP requests by method, route and status",
    ["method", "route", "status"],
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
