"""Conditional requests (RFC 9110 13.1) over record versions.

A record's ETag is its version, strong: ``"7"``. ``If-Match`` compares
strongly (a weak tag never matches), ``If-None-Match`` weakly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')


@dataclass(frozen=True)
class ETagSet:
    any: bool
    strong: frozenset[str]
    weak: frozenset[str]

    def matches_strong(self, version: int) -> bool:
        return self.any or str(version) in self.strong

    def matches_weak(self, version: int) -> bool:
        return self.matches_weak_tag(f'"{version}"')

    def matches_weak_tag(self, etag: str) -> bool:
        """Weak comparison against a full ETag as sent (``"7"`` or ``W/"..."``)."""
        opaque = etag.removeprefix("W/").strip('"')
        return self.any or opaque in self.strong or opaque in self.weak


def parse(header: str | None) -> ETagSet | None:
    if header is None:
        return None
    text = header.strip()
    if text == "*":
        return ETagSet(True, frozenset(), frozenset())
    strong: set[str] = set()
    weak: set[str] = set()
    pos = 0
    while pos < len(text):
        match = _TAG.match(text, pos)
        if match is None or match.end() == pos:
            break
        (weak if match.group(1) else strong).add(match.group(2))
        pos = match.end()
    return ETagSet(False, frozenset(strong), frozenset(weak))
