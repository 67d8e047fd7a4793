"""One request header read straight from the ASGI scope, on the hottest paths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def first_header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first ``name`` header of a request, as ``request.headers.get(name)`` gives it
    (ASGI servers give names in lower case; values are latin-1), without building
    Starlette's ``Headers`` nor raising and catching a ``KeyError`` when it is absent."""
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None
