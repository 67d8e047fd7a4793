"""What each parameter means, with an example, by where it goes and its name.

A parameter keeps the description its route declares (next to the code that
reads it); these fill in the rest and give every parameter its example.
``OVERRIDES`` holds the few names that mean something else on one operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Param:
    description: str
    example: Any
    # Swagger UI's "Try it out" fills every parameter with its example. One whose example
    # would make that call fail (a cursor of another query, a stale If-Match, a reused
    # Idempotency-Key) is offered as a second example, after "not sent".
    only_on_request: bool = False


UUID_EXAMPLE = "3f1c2a7e-8b4d-4e0f-9a61-2d5b7c9e1f30"
_PAGE = "Page size, 1 to 1000 (default 50)."
_CURSOR = (
    "Opaque cursor from the previous page's `next_cursor`; send it with the same filters "
    "and sort, or it is refused (400)."
)
_MATCH = "Exact match, or a prefix ending in '*'."

PATH: dict[str, Param] = {
    "org": Param("An organisation's name (its URL slug).", "acme"),
    "ds": Param("A dataset's name (its URL slug, unique on the platform).", "products"),
    "record_id": Param(
        "The record's id: the value of the dataset's primary key field if it declares one, "
        "else the id the platform assigned (a ULID). Percent-encode reserved characters.",
        "w-1",
    ),
    "app": Param("An application's id (a UUID, from `POST /v1/apps`).", UUID_EXAMPLE),
    "key_id": Param("An API key's id (a UUID, not the key itself).", UUID_EXAMPLE),
    "user_id": Param("A user's id (a UUID).", UUID_EXAMPLE),
    "request_id": Param("An access request's id (a UUID).", UUID_EXAMPLE),
    "grant_id": Param("A grant's id (a UUID).", UUID_EXAMPLE),
    "webhook": Param("A webhook's id (a UUID).", UUID_EXAMPLE),
    "delivery": Param("A delivery's id (a UUID, from the delivery log).", UUID_EXAMPLE),
    "plan": Param("A plan's name.", "gold"),
}

QUERY: dict[str, Param] = {
    "limit": Param(_PAGE, 100),
    "cursor": Param(_CURSOR, "eyJwIjpbIncxIl0sInEiOiIwMTIzIn0", only_on_request=True),
    "q": Param("Full-text search over names, titles and descriptions.", "products"),
    "org": Param("Only those of this organisation (its name).", "acme"),
    "tag": Param("Only datasets carrying this tag.", "shop", only_on_request=True),
    "actor": Param(_MATCH + " Who acted, e.g. `key:<id>` for an API key.", "key:*"),
    "action": Param(_MATCH, "dataset.*"),
    "target": Param(_MATCH + " E.g. 'dataset:sales*'.", "dataset:products"),
    "outcome": Param("Only rows with this outcome (denied: a refused access).", "denied"),
    "request_id": Param("An X-Request-ID: the rows one request wrote.", "req-7f3a9c"),
    "since": Param("From this time, inclusive (RFC 3339).", "2026-01-01T00:00:00Z"),
    "until": Param("Before this time, exclusive (RFC 3339).", "2026-02-01T00:00:00Z"),
    "status": Param("Only those in this state.", "pending"),
    "dataset": Param("Only those of this dataset (its name).", "products"),
    "app": Param("Only those of this application (its id).", UUID_EXAMPLE),
    "filter": Param(
        "Conditions on record fields: `filter[field]=value` (equality) or "
        "`filter[field][op]=value` with op one of eq, ne, gt, gte, lt, lte, in "
        "(comma-separated values), like (`%` and `_` wildcards). Unknown fields or ops: 400.",
        {"name": "Widget"},
    ),
    "sort": Param(
        "Comma-separated fields to sort by, `-` before a field for descending; ties are "
        "broken by id.",
        "-price,sku",
    ),
    "fields": Param(
        "Comma-separated record fields to return in `data` (default: all you may see).",
        "sku,price",
    ),
    "after": Param("Return changes with seq > after (0: from the start).", 0),
    "wait": Param("Long-poll up to this many seconds for a first change (0 to 60).", 2),
    "incarnation": Param("The incarnation `after` belongs to.", "1", only_on_request=True),
    "ticket": Param(
        "", "eyJhbGciOiJFZERTQSIsInR5cCI6ImVudHJlcG90LXN0cmVh...", only_on_request=True
    ),
    "mode": Param(
        "insert: a record whose id exists fails its line. upsert: it is replaced.", "upsert"
    ),
    "on_error": Param(
        "abort: all or nothing (a failed line writes nothing, 422). skip: write the good "
        "lines and report the failed ones.",
        "skip",
    ),
    "format": Param("ndjson: one JSON record a line. csv: RFC 4180 with a header row.", "ndjson"),
    "envelope": Param("", "false"),
    "csv": Param("", "exact"),
    "granularity": Param("The period each row counts: an hour or a UTC day.", "day"),
    "from": Param("Inclusive (RFC 3339).", "2026-01-01T00:00:00Z"),
    "to": Param("Exclusive (RFC 3339).", "2026-01-08T00:00:00Z"),
}

HEADER: dict[str, Param] = {
    "Idempotency-Key": Param(
        "1 to 255 printable ASCII characters, unique per write (a UUID is a good choice). "
        "A retry with the same key and body replays the first answer for 24 h "
        "(`Idempotent-Replayed: true`); the same key with another body is a 422; "
        "while the first is in flight, a 409.",
        "5d0f4a6e-3c1b-4f7a-9e2d-8b6c1a0f3e57",
        only_on_request=True,
    ),
    "If-Match": Param(
        'Write only if the record\'s current ETag is this one (`"<version>"`), else 412. '
        "A dataset created with `require_if_match` refuses writes without it (428).",
        '"1"',
        only_on_request=True,
    ),
    "If-None-Match": Param(
        "On GET: answer 304 with no body if the record's ETag is still this one. On PUT: "
        "`*` creates the record only if it does not exist (412 if it does).",
        '"1"',
        only_on_request=True,
    ),
    "Last-Event-ID": Param(
        "With `Accept: text/event-stream`: resume after this seq (EventSource sends it "
        "when it reconnects); takes precedence over `after`.",
        "1041",
        only_on_request=True,
    ),
}

WHERE = {"path": PATH, "query": QUERY, "header": HEADER}

# (operationId, name): what a name means on that one operation.
OVERRIDES: dict[tuple[str, str], Param] = {
    ("changes.list", "limit"): Param("Changes per page, 1 to 1000 (default 100).", 500),
    ("datasets.list", "org"): Param("Only datasets of this organisation (its name).", "acme"),
    ("apps.list", "org"): Param("Only applications of this organisation (its name).", "acme"),
    ("webhooks.deliveries.list", "status"): Param(
        "Only deliveries in this state: pending (waiting for its attempt), delivering (being "
        "sent), delivered, failed (every attempt failed: dead-lettered), cancelled.",
        "failed",
    ),
    ("access_requests.list", "status"): Param(
        "Only requests in this state: pending, approved or rejected.", "pending"
    ),
}


def describe(operation_id: str, where: str, name: str) -> Param | None:
    """The description and example for one parameter, or None if none is known."""
    found = OVERRIDES.get((operation_id, name))
    if found is not None:
        return found
    return WHERE.get(where, {}).get(name)
