"""Resource ids in URLs: a malformed id names nothing, so it is a plain 404."""

from __future__ import annotations

import uuid

from entrepot.problems import NotFound


def parse_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def uuid_or_404(raw: str, what: str) -> uuid.UUID:
    parsed = parse_uuid(raw)
    if parsed is None:
        raise NotFound(f"{what} {raw!r} does not exist or is not visible to you.")
    return parsed
