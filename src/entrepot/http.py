"""Small HTTP helpers shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from entrepot.problems import UnsupportedMediaType

JSON_TYPES = ("application/json",)

Limit = Annotated[str | None, Query(description="Page size, 1 to 1000 (default 50).")]
Cursor = Annotated[
    str | None, Query(max_length=4096, description="Opaque cursor from next_cursor.")
]


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_json(request: Request) -> None:
    kind = media_type(request)
    if kind not in JSON_TYPES and not (kind.startswith("application/") and kind.endswith("+json")):
        raise UnsupportedMediaType(
            f"Send the body as application/json (got {kind or 'no Content-Type'})."
        )
