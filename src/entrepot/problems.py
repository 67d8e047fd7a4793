"""RFC 9457 problem documents: one exception family, one renderer.

Domain code raises a :class:`Problem` subclass; the handlers installed by
:func:`install_handlers` render every error, including the framework's own, as
``application/problem+json``. Nothing else builds error bodies.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from entrepot.audit.log import record

PROBLEM_BASE = "https://entrepot.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Validation failures: {path, message} with a JSON Pointer "
            "(bulk imports report {line, errors}).",
            "items": {"type": "object"},
        },
        "request_id": {"type": "string"},
    },
}

log = structlog.get_logger("entrepot.problems")


class Problem(Exception):
    status: int = 500
    slug: str = "internal"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        denial: bool = False,
        target_org: uuid.UUID | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.denial = denial  # an access decision: audited as 'denied'
        # For the audit log only: the organisation owning what the denial protected,
        # whose administrators see the denial too. Never rendered.
        self.target_org = target_org

        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            doc["errors"] = self.errors
        doc.update(self.extra)
        return doc


class BadRequest(Problem):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(
        self,
        detail: str,
        *,
        error: str = "invalid_token",
        reason: str = "invalid",
        credential: str | None = None,
        app_id: Any = None,
        org_id: Any = None,
    ) -> None:
        super().__init__(
            detail,
            headers={"WWW-Authenticate": f'Bearer realm="entrepot", error="{error}"'},
            denial=True,
        )
        # For the audit log only; never rendered into the response.
        self.reason = reason
        self.credential = credential
        self.app_id = app_id
        self.org_id = org_id


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(Problem):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class NotAcceptable(Problem):
    status, slug, title = 406, "not-acceptable", "Not acceptable"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class Gone(Problem):
    status, slug, title = 410, "gone", "Gone"


class PreconditionFailed(Problem):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Unprocessable(Problem):
    status, slug, title = 422, "validation", "Validation failed"


class PreconditionRequired(Problem):
    status, slug, title = 428, "precondition-required", "Precondition required"


class RateLimited(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"


class BulkLimited(Problem):
    status, slug, title = 429, "bulk-limited", "Too many imports and exports at once"


class RequestTimeout(Problem):
    status, slug, title = 408, "request-timeout", "Request body too slow"


class QuotaExceeded(Problem):
    status, slug, title = 429, "quota-exceeded", "Quota exceeded"


def refuse_nulls(changes: Mapping[str, Any], keys: Iterable[str]) -> None:
    """In a PATCH, ``null`` for a field that cannot be removed is a 422, not a silent no-op."""
    for key in keys:
        if key in changes and changes[key] is None:
            raise Unprocessable(
                f"{key} cannot be null.",
                errors=[{"path": f"/{key}", "message": "cannot be null"}],
            )


class ServiceUnavailable(Problem):
    status, slug, title = 503, "unavailable", "Service unavailable"


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
    where = str(loc[0]) if loc else "body"
    rest = [str(p) for p in loc[1:]]
    return where, "/" + "/".join(rest)


AUDIT_TIMEOUT_SECONDS = 2.0


async def _audit_denial(request: Request, problem: Problem) -> None:
    """Write the denial's audit row; a failing store must never turn a 401/403/404 into a 5xx."""
    principal = getattr(request.state, "principal", None)
    details: dict[str, Any] = {"method": request.method, "detail": problem.detail}
    actor, app_id, org_id = None, None, None
    if isinstance(problem, Unauthorized):
        # Names the refused credential (key id or display prefix), never its secret.
        details["reason"] = problem.reason
        actor, app_id, org_id = problem.credential, problem.app_id, problem.org_id
    try:
        await asyncio.wait_for(
            record(
                request.app.state.pool,
                principal,
                "auth.failed" if problem.status == 401 else "access.denied",
                request.url.path,
                outcome="denied",
                status=problem.status,
                details=details,
                actor=actor,
                app_id=app_id,
                org_id=org_id,
                target_org_id=problem.target_org,
            ),
            AUDIT_TIMEOUT_SECONDS,
        )
    except Exception as exc:  # the store is down or slow: answer anyway, loudly
        log.warning("audit_denial_failed", error=type(exc).__name__, path=request.url.path)


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    if exc.denial:
        await _audit_denial(request, exc)
    return problem_response(exc, _request_id(request))


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    in_body = True
    for err in exc.errors():
        where, path = _location(err.get("loc", ()))
        if where != "body":
            in_body = False
            path = f"{where}:{'/'.join(str(p) for p in err.get('loc', ())[1:])}"
        errors.append({"path": path, "message": str(err.get("msg", "invalid"))})
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


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FRAMEWORK_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _is_framework_error_content(content: Any) -> bool:
    """FastAPI's own 422 description, which these handlers never send."""
    framework = {
        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
    }
    return bool(content == framework)


def document_problems(doc: dict[str, Any]) -> dict[str, Any]:
    """Describe error responses in an OpenAPI document as the problem documents they are.

    Every operation gets a ``4XX`` problem response; a declared 4xx/5xx response
    without content (or with FastAPI's generated validation error) gets the
    problem schema. Idempotent, so it may run on a cached document.
    """
    doc.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            for code, response in responses.items():
                content = response.get("content")
                if str(code)[:1] in "45" and (not content or _is_framework_error_content(content)):
                    response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": dict(_PROBLEM_REF)}}
            responses.setdefault(
                "4XX",
                {
                    "description": "A problem document (RFC 9457)",
                    "content": {PROBLEM_CONTENT_TYPE: {"schema": dict(_PROBLEM_REF)}},
                },
            )
    referenced = orjson.dumps(doc.get("paths", {})).decode()
    for name in _FRAMEWORK_ERROR_SCHEMAS:
        if f"#/components/schemas/{name}" not in referenced:
            doc["components"]["schemas"].pop(name, None)
    return doc


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


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    for exc_type in STORE_UNAVAILABLE + STORE_CONFLICTS:
        app.add_exception_handler(exc_type, _on_store_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    # No handler for Exception: EdgeMiddleware renders what escapes the app (with the
    # request id, in the metrics); Starlette's outer handler would log it a second time.
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return document_problems(generate())

    app.openapi = openapi  # type: ignore[method-assign]
