"""Pure-ASGI middleware: request ids, access logs, metrics, body limits, HEAD,
and the last word on exceptions (500s) and clients that leave (499s).

Written against raw ASGI rather than BaseHTTPMiddleware: it adds no task
per request and never buffers bodies, so streaming imports stay streaming.
"""

from __future__ import annotations

import functools
import os
import random
import re
import time
import traceback
import uuid
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrepot.context import RequestContext, answer_cut, current_request
from entrepot.errors import log_unexpected, problem_response, unexpected_response
from entrepot.headers import raw_header
from entrepot.limits.limiter import rate_limit_headers
from entrepot.limits.meter import UsageMeter
from entrepot.logging import access_log
from entrepot.ops.metrics import REQUEST_SECONDS, REQUESTS
from entrepot.parts import app_components
from entrepot.principal import Principal
from entrepot.problems import BadRequest, PayloadTooLarge, Problem
from entrepot.server_protocol import ABORT_EXTENSION
from entrepot.streaming import ClientTooSlow

log = access_log
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_QUIET = frozenset({"/healthz", "/readyz"})


class _BodyTooLarge(Exception):
    pass


class _Silenced(Exception):
    """Raised into the app by our ``send`` once nothing more can reach the client.

    A HEAD answer is complete after its headers, and a client that has gone
    away receives nothing: raising stops a streamed body (export, SSE) at once
    instead of producing it into the void. No handler is registered for it.
    """


CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before its answer


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body: int, max_import_body: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_import_body = max_import_body

    def _limit_for(self, path: str) -> int:
        return self.max_import_body if path.endswith("/import") else self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        method: str = scope["method"]
        head = method == "HEAD"
        # HEAD is GET without the body, for every GET route at once. A copy, because
        # the server reads the method from its own scope to frame the answer.
        app_scope = {**scope, "method": "GET"} if head else scope
        path: str = scope["path"]
        limit = self._limit_for(path)
        status = 500
        response_started = False
        body_done = False
        client_gone = False
        raw_id = request_id.encode("latin-1")

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started, body_done
            if message["type"] == "http.response.start":
                if client_gone:
                    raise _Silenced
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", raw_id))
                decision = scope["state"].get("rate_limit")
                if decision is not None:
                    headers.extend(
                        (name.lower().encode(), value.encode())
                        for name, value in rate_limit_headers(decision).items()
                    )
                message = {**message, "headers": headers}
            elif head and message["type"] == "http.response.body":
                if body_done:
                    raise _Silenced
                body_done = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                if message.get("more_body", False):
                    raise _Silenced
                return
            await send(message)

        if _has_nul(scope):
            problem = BadRequest(
                "The URL cannot contain NUL characters (%00).",
                errors=[{"path": "url", "message": "contains NUL"}],
            )
            await _reject(app_scope, send_wrapper, problem, request_id)
            self._observe(app_scope, method, status, started, request_id)
            return

        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _reject_too_large(app_scope, send_wrapper, request_id, limit)
            self._observe(app_scope, method, status, started, request_id)
            return

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received, client_gone
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            elif message["type"] == "http.disconnect" and not response_started:
                client_gone = True
            return message

        client = scope.get("client")
        token = current_request.set(RequestContext(request_id, client[0] if client else None))
        try:
            try:
                await self.app(app_scope, receive_wrapper, send_wrapper)
            except _BodyTooLarge:
                if not response_started:
                    await _reject_too_large(app_scope, send_wrapper, request_id, limit)
            except _Silenced as exc:
                # The app's frames in the traceback still hold the response and its
                # body iterator (an export's transaction and pooled connection), in
                # cycles only the cyclic GC would break; free them now.
                traceback.clear_frames(exc.__traceback__)
            except ClientDisconnect:
                client_gone = True
            except ClientTooSlow as exc:
                # Cut mid-answer: the connection goes without the final chunk, so
                # the client cannot mistake it for a whole export; reset at once
                # where the server allows it, not once the client drains its buffers.
                answer_cut.set(True)
                abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
                if abort is not None:
                    abort["abort"]()
                self._note("client_too_slow", app_scope, method, request_id, reason=str(exc))
            except Exception as exc:
                status = 500
                log_unexpected(
                    exc,
                    method=method,
                    path=path,
                    route=_route_template(app_scope),
                    response_started=response_started,
                )
                if response_started:
                    # Too late for a problem document: cutting the connection is
                    # the only honest signal left, and the server does it.
                    self._observe(app_scope, method, status, started, request_id)
                    raise
                if not client_gone:
                    response = unexpected_response(request_id)
                    await response(app_scope, receive_wrapper, send_wrapper)
            if client_gone:
                status = CLIENT_CLOSED_REQUEST
                self._note("client_aborted", app_scope, method, request_id)
            self._observe(app_scope, method, status, started, request_id)
        finally:
            current_request.reset(token)

    @staticmethod
    def _note(event: str, scope: Scope, method: str, request_id: str, **extra: Any) -> None:
        """An info line about how a request ended that is not its status (no traceback)."""
        log.info(
            event,
            method=method,
            path=scope["path"],
            route=_route_template(scope),
            request_id=request_id,
            **extra,
        )

    def _observe(
        self, scope: Scope, method: str, status: int, started: float, request_id: str
    ) -> None:
        elapsed = time.perf_counter() - started
        route = _route_template(scope)
        path: str = scope["path"]
        principal = scope["state"].get("principal")
        _counted(method, route, status, _app_label(principal)).inc()
        _timed(method, route).observe(elapsed)
        if principal is not None and principal.app_id is not None and principal.kind == "app":
            meter = app_components(scope["app"]).find(UsageMeter)
            if meter is not None:
                dataset = scope.get("path_params", {}).get("ds")
                meter.count(principal.app_id, method, route, status, dataset)
        if path not in _QUIET or status >= 500:
            log.info(
                "request",
                method=method,
                path=path,
                route=route,
                status=status,
                duration_ms=_milliseconds(elapsed),
                request_id=request_id,
            )


def _milliseconds(seconds: float) -> float:
    """``seconds`` in milliseconds to two decimals, as ``round(ms, 2)`` gives them to the
    last digit but for exact ties, at about half its cost (184 against 347 ns) on
    every access line."""
    return int(seconds * 100_000 + 0.5) / 100


@functools.cache
def _counted(method: str, route: str, status: int, app: str) -> Counter:
    """The request counter's child for these labels: ``labels()`` takes a lock and
    validates the labels on every call, a third of what metrics cost a request. Bounded:
    the server parses only the standard methods, routes are templates, statuses few,
    apps at most ``MAX_APP_LABELS``."""
    return REQUESTS.labels(method, route, str(status), app)


MAX_APP_LABELS = 1000
_app_labels: dict[uuid.UUID, str] = {}


def _app_label(principal: Principal | None) -> str:
    """Who called, for the request counter: an app by its id (the first
    ``MAX_APP_LABELS`` this process meets; ``other`` past them, so a platform with
    many apps cannot grow the series without bound), else ``admin``, ``user`` or
    ``anonymous`` (no credential: open data, health, the reference). Per-app
    accounting that must be complete is the usage table's."""
    if principal is None:
        return "anonymous"
    if principal.kind == "app" and principal.app_id is not None:
        label = _app_labels.get(principal.app_id)
        if label is None:
            if len(_app_labels) >= MAX_APP_LABELS:
                return "other"
            label = _app_labels[principal.app_id] = str(principal.app_id)
        return label
    return "admin" if principal.is_admin else principal.kind  # user, anonymous (open data)


@functools.cache
def _timed(method: str, route: str) -> Histogram:
    return REQUEST_SECONDS.labels(method, route)


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    return str(template) if isinstance(template, str) else "unmatched"


def _request_id(scope: Scope) -> str:
    value = raw_header(scope, b"x-request-id")
    if value is not None:
        try:
            text = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if _VALID_REQUEST_ID.match(text):
            return text
    return f"{_ids.getrandbits(128):032x}"


# Request ids need to be unique, not secret: 128 bits from a generator seeded from the
# OS, reseeded in a forked child. os.urandom is a system call per request (2% of a
# GET by id under load, bench/RESULTS.md).
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def _content_length(scope: Scope) -> int | None:
    value = raw_header(scope, b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _has_nul(scope: Scope) -> bool:
    """NUL can never be stored in PostgreSQL text, so no URL may carry one."""
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"\x00" in query or b"%00" in query


async def _reject_too_large(scope: Scope, send: Send, request_id: str, limit: int) -> None:
    problem = PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
    await _reject(scope, send, problem, request_id)


async def _reject(scope: Scope, send: Send, problem: Problem, request_id: str) -> None:
    response = problem_response(problem, request_id)
    response.headers["Connection"] = "close"

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)
