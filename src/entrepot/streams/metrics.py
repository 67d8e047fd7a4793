"""Prometheus metrics for the JetStream publisher (set by the replica holding its lease)."""

from __future__ import annotations

import contextlib
import os

from prometheus_client import Counter, Gauge

PUBLISHED = Counter(
    "entrepot_jetstream_publish_total",
    "Changes offered to JetStream by outcome: published (acknowledged), duplicate "
    "(acknowledged as already stored: a republish), rejected (wrong last sequence: another "
    "publisher got there first; resynchronised), failed (timed out or refused; retried), "
    "compacted (changes skipped because the feed dropped them before they were published)",
    ["stream", "outcome"],
)
LAG = Gauge(
    "entrepot_jetstream_lag_events",
    "Feed head seq minus the last seq JetStream acknowledged for the stream (what is "
    "committed but not yet published; a narrowed stream counts the changes it scanned)",
    ["stream", "dataset"],
    multiprocess_mode="livemostrecent",
)
LEASE_HELD = Gauge(
    "entrepot_jetstream_lease_held",
    "1 in the process holding the publisher lease, 0 elsewhere",
    multiprocess_mode="livesum",
)
ENDED = Counter(
    "entrepot_jetstream_streams_ended_total",
    "Streams ended by the publisher: grant_revoked, grant_expired, grant_narrowed (the "
    "grant lost changes:read)",
    ["reason"],
)


def set_lag(stream: str, dataset: str, lag: int) -> None:
    LAG.labels(stream, dataset).set(max(lag, 0))


def forget_lag(stream: str, dataset: str) -> None:
    """A stream no longer published here (ended, removed, or the lease moved away)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        LAG.labels(stream, dataset).set(0)
    else:
        with contextlib.suppress(KeyError):
            LAG.remove(stream, dataset)
