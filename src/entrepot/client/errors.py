"""Errors the SDK raises: every non-2xx answer is a :class:`ProblemError` carrying the
server's RFC 9457 problem document; a request that never got an answer is a
:class:`ConnectionFailed`.

Each status family has its own subclass, so callers catch what they handle
(``except NotFound``) and let the rest propagate. OAuth token errors (RFC 6749
section 5.2 bodies, ``{error, error_description}``) are mapped onto the same fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from entrepot.client.retry import parse_retry_after


class EntrepotError(Exception):
    """Base of everything the SDK raises on purpose."""


class ConnectionFailed(EntrepotError):
    """No HTTP answer was had (connection refused, reset, timed out), after any retries."""

    def __init__(self, method: str, url: str, cause: BaseException) -> None:
        super().__init__(f"{method} {url}: {type(cause).__name__}: {cause}")
        self.method = method
        self.url = url
        self.cause = cause


class ProblemError(EntrepotError):
    """An error answer from the server, with its problem document.

    ``problem`` is the parsed body as sent (extension members included, e.g. a
    410's ``reason``); the common members are attributes.
    """

    status: int

    def __init__(
        self,
        status: int,
        problem: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.problem: dict[str, Any] = dict(problem)
        self.headers: dict[str, str] = dict(headers or {})
        self.type: str = str(problem.get("type") or "about:blank")
        self.title: str = str(problem.get("title") or problem.get("error") or f"HTTP {status}")
        self.detail: str = str(problem.get("detail") or problem.get("error_description") or "")
        errors = problem.get("errors")
        self.errors: list[dict[str, Any]] = (
            [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        )
        request_id = problem.get("request_id") or self.headers.get("x-request-id")
        self.request_id: str | None = str(request_id) if request_id else None
        self.retry_after: float | None = parse_retry_after(self.headers.get("retry-after"))
        text = f"{status} {self.title}"
        super().__init__(f"{text}: {self.detail}" if self.detail else text)


class BadRequest(ProblemError):
    """400: malformed input, unknown filter fields or operators, bad cursors."""


class Unauthorized(ProblemError):
    """401: no, unknown, expired or revoked credential."""


class Forbidden(ProblemError):
    """403: authenticated but not allowed."""


class NotFound(ProblemError):
    """404: no such resource, or one the caller may not see."""


class Conflict(ProblemError):
    """409: duplicate name or id, an incompatible schema change, a key still in flight."""


class Gone(ProblemError):
    """410: a feed position that cannot be continued from; resnapshot from the export.

    ``reason`` is ``compacted``, ``ahead`` or ``incarnation``.
    """

    @property
    def reason(self) -> str | None:
        value = self.problem.get("reason")
        return str(value) if value is not None else None


class PreconditionFailed(ProblemError):
    """412: ``If-Match`` / ``If-None-Match`` not satisfied (someone else changed the record)."""


class PayloadTooLarge(ProblemError):
    """413: the body is over the server's limit."""


class ValidationError(ProblemError):
    """422: the body does not match the schema; ``errors`` lists ``{path, message}``."""


class PreconditionRequired(ProblemError):
    """428: the dataset requires ``If-Match`` on writes."""


class RateLimited(ProblemError):
    """429: rate limit, quota or bulk slots exhausted; ``retry_after`` says when to retry."""


class ServerError(ProblemError):
    """5xx: the server failed or is unavailable (503 carries ``Retry-After``)."""


BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    422: ValidationError,
    428: PreconditionRequired,
    429: RateLimited,
}


def problem_from_response(response: httpx.Response) -> ProblemError:
    """The exception for an error response whose body has been read."""
    body: dict[str, Any] = {}
    try:
        parsed = json.loads(response.content) if response.content else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        body = parsed
    elif response.content:
        body = {"detail": response.text[:500]}
    if "title" not in body and "error" not in body:
        body.setdefault("title", response.reason_phrase or f"HTTP {response.status_code}")
    return problem_from_document(response.status_code, body, dict(response.headers))


def problem_from_document(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> ProblemError:
    """The exception for a problem document (one sent inside an event stream, too)."""
    cls = BY_STATUS.get(status) or (ServerError if status >= 500 else ProblemError)
    return cls(status, body, headers=headers)


__all__ = [
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "EntrepotError",
    "Forbidden",
    "Gone",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PreconditionRequired",
    "ProblemError",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "ValidationError",
    "problem_from_document",
    "problem_from_response",
]
