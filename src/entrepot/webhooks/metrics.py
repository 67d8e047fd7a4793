"""Prometheus metrics for webhook delivery (per process; gauges describe the shared queue).

Every worker sets the gauges from the same store query, so with several workers
the metrics listener reports the latest value a live worker set
(``livemostrecent``), not one series per worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from entrepot.webhooks.dispatch_repository import FeedLag

DELIVERIES = Counter(
    "entrepot_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retrying, failed, gone, refused)",
    ["outcome"],
)
ENQUEUED = Counter("entrepot_webhook_enqueued_total", "Webhook deliveries queued from the feed")
QUEUE_DEPTH = Gauge(
    "entrepot_webhook_queue_depth",
    "Webhook deliveries pending or in flight (all replicas)",
    multiprocess_mode="livemostrecent",
)
OLDEST_PENDING_AGE = Gauge(
    "entrepot_webhook_oldest_pending_age_seconds",
    "Age of the oldest unfinished webhook delivery (all replicas)",
    multiprocess_mode="livemostrecent",
)
LATENCY = Histogram(
    "entrepot_webhook_delivery_latency_seconds",
    "From the change's commit to its successful delivery",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
FEED_LAG = Gauge(
    "entrepot_webhook_feed_lag_events",
    "Changes committed to a dataset's feed but not yet queued for a subscription",
    ["webhook", "dataset"],
    multiprocess_mode="livemostrecent",
)


def set_feed_lag(
    lags: Iterable[FeedLag], before: frozenset[tuple[str, str]]
) -> frozenset[tuple[str, str]]:
    """Set each subscription's lag; one no longer there reads 0 (removed where the client
    library can: not in multiprocess mode). Returns the series now set."""
    now = {}
    for lag in lags:
        now[(str(lag.webhook_id), str(lag.dataset))] = float(lag.lag)
    for labels, value in now.items():
        FEED_LAG.labels(*labels).set(value)
    for labels in before - now.keys():
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            FEED_LAG.labels(*labels).set(0)
        else:
            FEED_LAG.remove(*labels)
    return frozenset(now)
