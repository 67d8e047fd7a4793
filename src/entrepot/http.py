"""Small HTTP helpers shared by the routers."""

from __future__ import annotations

from fastapi import Request

from entrepot.problems import UnsupportedMediaType

JSON_TYPES = ("application/json",)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_json(request: Request) -> None:
    kind = media_type(request)
    if kind not in JSON_TYPES and not (kind.startswith("application/") and kind.endswith("+json")):
        raise UnsupportedMediaType(
            f"Send the body as application/json (got {kind or 'no Content-Type'})."
        )
