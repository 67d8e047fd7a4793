"""The hottest read served past FastAPI's router and dependency machinery.

Profiling GET-one-record (bench/RESULTS.md) put route matching across the
included routers and dependency solving at about a quarter of the request,
our own code at 3%. This layer sits inside EdgeMiddleware, recognises that
one route by its exact shape and calls the very functions the FastAPI route
calls (``authenticate``, then the endpoint function, then the app's own
exception handlers; what none handles goes on up to EdgeMiddleware), so the
answer is the same byte for byte; a test holds the two paths together.
Everything else goes on to the app unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from entrepot.auth.authenticate import authenticate
from entrepot.records.endpoints import get_record
from entrepot.store.work import reads

RECORD = re.compile(r"^/v1/datasets/([^/]+)/records/([^/]+)$")

Handler = Callable[[Request, Exception], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class _Route:
    """What metrics, logs and usage metering read from ``scope["route"]``."""

    path: str


RECORD_ROUTE = _Route("/v1/datasets/{ds}/records/{record_id}")


class FastPaths:
    def __init__(self, app: ASGIApp, *, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            match = RECORD.match(scope["path"])
            if match is not None:
                await self._get_record(scope, receive, send, match[1], match[2])
                return
        await self.app(scope, receive, send)

    async def _get_record(
        self, scope: Scope, receive: Receive, send: Send, ds: str, record_id: str
    ) -> None:
        scope["route"] = RECORD_ROUTE
        scope["path_params"] = {"ds": ds, "record_id": record_id}
        request = Request(scope, receive)
        try:
            principal = await authenticate(request)
            async with reads(self.fastapi.state.pool) as reading:
                response = await get_record(ds, record_id, request, principal, reading)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # EdgeMiddleware renders it, as it does for the routed path
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        """The handler the app registered for this exception, as Starlette's
        ExceptionMiddleware would pick it (a handler for Exception itself is never its)."""
        handlers: dict[Any, Any] = self.fastapi.exception_handlers  # all ours are async
        for cls in type(exc).__mro__:
            if cls is not Exception and cls in handlers:
                handler: Handler = handlers[cls]
                return handler
        return None
