"""One request header read straight from the ASGI scope, on the hottest paths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def raw_header(scope: Mapping[str, Any], name: bytes) -> bytes | None:
    """The first ``name`` header of a request as the server gave it (ASGI servers give
    names in lower case), or None when there is none."""
    for key, value in scope.get("headers", ()):
        if key == name:
            found: bytes = value
            return found
    return None


def first_header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first ``name`` header of a request, as ``request.headers.get(name)`` gives it
    (values are latin-1), without building Starlette's ``Headers`` nor raising and
    catching a ``KeyError`` when it is absent."""
    value = raw_header(scope, name)
    return None if value is None else value.decode("latin-1")
