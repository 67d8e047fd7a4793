"""Small HTTP helpers shared by the routers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.params import Form
from fastapi.routing import APIRoute

from entrepot import jsonbody
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
    if not is_json(kind):
        raise UnsupportedMediaType(
            f"Send the body as application/json (got {kind or 'no Content-Type'})."
        )


def is_json(kind: str) -> bool:
    """The media types FastAPI parses a body of as JSON."""
    return kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json"))


class StrictJsonRoute(APIRoute):
    """A route whose JSON body is read as record bodies are (:func:`jsonbody.parse_body`)
    before FastAPI parses it: malformed JSON and a repeated key are a 400, a string
    PostgreSQL cannot store a 422, where FastAPI's own parse lets the last of repeated
    keys win and calls malformed JSON a validation error. Every router uses it
    (``route_class=StrictJsonRoute``; a test walks the app's routes)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None or isinstance(self.body_field.field_info, Form):
            return handler

        async def strict(request: Request) -> Response:
            if is_json(media_type(request)):
                body = await request.body()
                if body:
                    jsonbody.parse_body(body)
            return await handler(request)

        return strict
