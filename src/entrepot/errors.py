"""The one error renderer: every exception an answer can carry becomes a problem document.

:func:`install_handlers` renders :class:`~entrepot.problems.Problem`, the
framework's validation and HTTP errors and the store's failures; what escapes
every handler is answered by the edge middleware with :func:`unexpected_response`.
Denials are handed to the ``on_denial`` hook (the audit log) before they are answered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from entrepot.problems import (
    PROBLEM_CONTENT_TYPE,
    BadRequest,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    Problem,
    ServiceUnavailable,
    Unprocessable,
    UnsupportedMediaType,
)
from entrepot.wording import pydantic_message

log = structlog.get_logger("entrepot.problems")

OnDenial = Callable[[Request, Problem], Awaitable[None]]
"""Called with every denial before it is answered; it must not raise."""


def problem_response(problem: Problem, request_id: str | None = None) -> Response:
    body = problem.body()
    if request_id:
        body["request_id"] = request_id
    return Response(
        orjson.dumps(body),
        status_code=problem.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


_BY_STATUS: dict[int, type[Problem]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        NotAcceptable,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        ServiceUnavailable,
    )
}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _location(loc: tuple[Any, ...] | list[Any]) -> tuple[str, str]:
    """Where pydantic found a fault: ``body`` and a JSON Pointer into it ("" for the
    whole body, as in record errors), or the parameter's kind."""
    where = str(loc[0]) if loc else "body"
    pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in loc[1:])
    return where, pointer


def _problem_handler(
    on_denial: OnDenial | None,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        if exc.denial and on_denial is not None:
            await on_denial(request, exc)
        return problem_response(exc, _request_id(request))

    return on_problem


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    in_body = True
    for err in exc.errors():
        where, path = _location(err.get("loc", ()))
        if where != "body":
            in_body = False
            path = f"{where}:{'/'.join(str(p) for p in err.get('loc', ())[1:])}"
        errors.append({"path": path, "message": pydantic_message(err)})
    cls: type[Problem] = Unprocessable if in_body else BadRequest
    detail = "The request body is invalid." if in_body else "The request parameters are invalid."
    return problem_response(cls(detail, errors=errors), _request_id(request))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    cls = _BY_STATUS.get(exc.status_code, BadRequest if exc.status_code < 500 else Problem)
    problem = cls(str(exc.detail), headers=dict(exc.headers or {}))
    problem.status = exc.status_code
    return problem_response(problem, _request_id(request))


def log_unexpected(exc: BaseException, **facts: Any) -> None:
    """The one error line (with the traceback) for an exception no handler knows."""
    log.error("unhandled_error", exc_info=exc, **facts)


def unexpected_response(request_id: str | None) -> Response:
    """The 500 every path answers, whichever layer the exception escaped from."""
    return problem_response(
        Problem("An unexpected error occurred; it has been logged."), request_id
    )


def _from_store_error(exc: Exception) -> Problem:
    """Map what PostgreSQL says under concurrency and failure to honest statuses.

    Deadlocks and serialisation failures are the client's cue to retry (409);
    a store that is failing over or refusing connections is a 503 with
    Retry-After, never a 500; data errors that slipped past validation are 400.
    """
    retry = {"Retry-After": "1"}
    if isinstance(exc, asyncpg.DeadlockDetectedError | asyncpg.SerializationError):
        return Conflict("A concurrent change conflicted with this one; retry it.", headers=retry)
    if isinstance(exc, asyncpg.DataError):
        return BadRequest("A value in the request cannot be processed.")
    if isinstance(exc, asyncpg.QueryCanceledError):
        return ServiceUnavailable("The store took too long to answer; retry later.", headers=retry)
    return ServiceUnavailable("The store is unavailable; retry shortly.", headers=retry)


STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.ConnectionFailureError,
    asyncpg.AdminShutdownError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.InterfaceError,
    # A pooled connection that dies mid-request (a failover) can leave asyncpg's
    # protocol in a state it reports this way; the chaos test met it (docs/ha.md).
    asyncpg.InternalClientError,
    asyncpg.QueryCanceledError,
    ConnectionError,
)
STORE_CONFLICTS: tuple[type[Exception], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.DataError,
)


async def _on_store_error(request: Request, exc: Exception) -> Response:
    problem = _from_store_error(exc)
    log.warning("store_error", error=type(exc).__name__, status=problem.status)
    return problem_response(problem, _request_id(request))


def install_handlers(app: FastAPI, *, on_denial: OnDenial | None = None) -> None:
    app.add_exception_handler(Problem, _problem_handler(on_denial))
    for exc_type in STORE_UNAVAILABLE + STORE_CONFLICTS:
        app.add_exception_handler(exc_type, _on_store_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    # No handler for Exception: EdgeMiddleware renders what escapes the app (with the
    # request id, in the metrics); Starlette's outer handler would log it a second time.
    # The OpenAPI document declares these problems: entrepot.reference.document.
