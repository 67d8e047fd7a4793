"""Opaque list cursors and the shared ``limit`` rules.

A cursor is URL-safe base64 of a small JSON document holding the keyset
position (the sort values and id of the last row served) and a fingerprint of
the query it belongs to, so a cursor is refused when replayed against a
different sort or filter rather than silently skipping rows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from entrepot.problems import BadRequest

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest(
            "limit must be an integer between 1 and 1000.",
            errors=[{"path": "query:limit", "message": "not an integer"}],
        ) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(
            "limit must be an integer between 1 and 1000.",
            errors=[{"path": "query:limit", "message": "out of range"}],
        )
    return limit


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:16]


def encode_cursor(position: list[Any], query_fingerprint: str) -> str:
    payload = orjson.dumps({"p": position, "q": query_fingerprint})
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def invalid_cursor() -> BadRequest:
    return BadRequest(
        "The cursor is invalid or belongs to a different query.",
        errors=[{"path": "query:cursor", "message": "invalid cursor"}],
    )


def page(
    items: list[T], limit: int, query_fingerprint: str, position: Callable[[T], list[Any]]
) -> dict[str, Any]:
    """A list response from up to ``limit + 1`` items: the extra one only says there is more."""
    more = len(items) > limit
    items = items[:limit]
    cursor = encode_cursor(position(items[-1]), query_fingerprint) if more and items else None
    return {"data": items, "next_cursor": cursor}


def decode_cursor(cursor: str, query_fingerprint: str) -> list[Any]:
    invalid = invalid_cursor()
    if len(cursor) > 4096:
        raise invalid
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        doc = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError, orjson.JSONDecodeError):
        raise invalid from None
    if (
        not isinstance(doc, dict)
        or doc.get("q") != query_fingerprint
        or not isinstance(doc.get("p"), list)
    ):
        raise invalid
    position: list[Any] = doc["p"]
    return position
