"""Answers made comparable across runs: what differs by chance is named, not compared.

Random ids, secrets, times, cursors and request ids become placeholders
numbered in order of first appearance (the same value, the same name), so a
recorded answer still says which value was reused where. Headers whose value
depends on timing (rate limits, dates) are left out.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

KEPT_HEADERS = (
    "allow",
    "cache-control",
    "content-disposition",
    "content-type",
    "etag",
    "idempotent-replayed",
    "location",
    "retry-after",
    "www-authenticate",
    "x-entrepot-incarnation",
    "x-entrepot-seq",
)
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("uuid", re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ("time", re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")),
    ("jwt", re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")),
    ("key", re.compile(r"\bent_[A-Za-z0-9_-]{20,}")),
    ("prefix", re.compile(r"\bent_[A-Za-z0-9_-]{4,12}(?![A-Za-z0-9_-])")),
    ("secret", re.compile(r"\b(?:secret|whsec)_[A-Za-z0-9+/=_-]{16,}")),
    ("client", re.compile(r"\bapp_[A-Za-z0-9_-]{8,}")),
    ("message", re.compile(r"\bmsg_[0-9a-f]{32}\b")),
    ("kid", re.compile(r"\bkid-[A-Za-z0-9_-]+")),
]
_OPAQUE_KEYS = {
    "next_cursor": "cursor",
    "cursor": "cursor",
    "request_id": "request-id",
    "kid": "kid",
    "retired": "kid",
    "x": "public-key",
}
# Times and tokens are named but not numbered: two that fell in the same microsecond
# in one run need not in the next.
_UNNUMBERED = frozenset({"time", "jwt"})


class Normaliser:
    def __init__(self) -> None:
        self._names: dict[tuple[str, str], str] = {}

    def _name(self, kind: str, value: str) -> str:
        if kind in _UNNUMBERED:
            return f"<{kind}>"
        key = (kind, value)
        if key not in self._names:
            count = sum(1 for k in self._names if k[0] == kind)
            self._names[key] = f"<{kind}:{count + 1}>"
        return self._names[key]

    def text(self, value: str) -> str:
        for kind, pattern in _PATTERNS:
            value = pattern.sub(lambda m, kind=kind: self._name(kind, m.group(0)), value)
        return value

    def value(self, value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, key) for v in value]
        if isinstance(value, str):
            if key in _OPAQUE_KEYS and value:
                return self._name(_OPAQUE_KEYS[key], value)
            return self.text(value)
        return value

    def answer(self, status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        kept = {k: self.text(headers[k]) for k in KEPT_HEADERS if k in headers}
        content: Any
        kind = headers.get("content-type", "")
        if kind.startswith(("application/json", "application/problem+json")) and body:
            content = self.value(orjson.loads(body))
        else:
            content = self.text(body.decode("utf-8", "replace"))
        return {"status": status, "headers": kept, "body": content}
