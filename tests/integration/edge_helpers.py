"""Helpers for tests of what EdgeMiddleware does to every request: logs, metrics, raw ASGI."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.types import ASGIApp, Message, Receive

from entrepot import errors, middleware
from entrepot.direct_routes import DirectRoute
from entrepot.logging import add_request_id

Log = list[MutableMapping[str, Any]]


@contextmanager
def captured_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Log]:
    """Every structlog event of the request, info included.

    The test session logs at warning through loggers cached on first use, so the
    access and problem loggers are swapped for unfiltered ones; ``capture_logs``
    then catches those and every other structlog logger's warnings and errors.
    """
    for module in (middleware, errors):
        unfiltered = structlog.wrap_logger(
            None,
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
            cache_logger_on_first_use=False,
        )
        monkeypatch.setattr(module, "log", unfiltered)
    with structlog.testing.capture_logs(
        [structlog.contextvars.merge_contextvars, add_request_id]
    ) as entries:
        yield entries


def events(entries: Log, event: str) -> Log:
    return [e for e in entries if e["event"] == event]


def requests_total(method: str, route: str, status: int) -> float:
    """The request counter as Prometheus would read it, without going over HTTP
    (summed over the calling apps, as ``sum without (app)`` would)."""
    want = {"method": method, "route": route, "status": str(status)}
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "entrepot_http_requests"
        for sample in family.samples
        if sample.name == "entrepot_http_requests_total"
        and all(sample.labels.get(k) == v for k, v in want.items())
    )


def http_scope(
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
    query_string: bytes = b"",
    *,
    spec_version: str = "2.4",
) -> dict[str, Any]:
    """``spec_version`` 2.3 is what uvicorn announces: Starlette's streams then end when
    the client reports ``http.disconnect`` (with 2.4, only when a send fails)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def request_until(gone: asyncio.Event) -> Receive:
    """A client's ``receive``: an empty request body, then nothing until ``gone`` is set,
    then ``http.disconnect``, as a server reports a client that hangs up."""
    asked = False

    async def receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    return receive


async def call_asgi(
    app: ASGIApp, scope: dict[str, Any], incoming: Sequence[Message]
) -> list[Message]:
    """Drive ``app`` with ``incoming`` as the client's messages; return what it sent.

    After the scripted messages the client is gone: ``http.disconnect`` forever,
    as a server reports a closed connection.
    """
    queue = list(incoming)
    sent: list[Message] = []

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def routed_only(app: FastAPI) -> FastAPI:
    """``app`` with its direct routes taken out: every request goes through FastAPI's
    router and dependency solver, to the same endpoint functions."""
    app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, DirectRoute)]
    return app
