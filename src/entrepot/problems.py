"""RFC 9457 problem documents: the one exception family every layer raises.

Domain code raises a :class:`Problem` subclass; :mod:`entrepot.errors` renders
every error, the framework's own included, as ``application/problem+json``.
This module imports nothing of the platform's, so every layer may use it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

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
            "description": "Validation failures: {path, message} with a JSON Pointer ('' for "
            "the whole body), or query:<name> / header:<name> for a parameter (bulk imports: "
            "{line, errors}).",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "message": {"type": "string"},
                    "line": {"type": "integer"},
                    "errors": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
        "request_id": {
            "type": "string",
            "description": "The X-Request-ID of the request (yours if you sent one).",
        },
        "reason": {
            "type": "string",
            "description": "gone (410) only: compacted, ahead or incarnation.",
        },
        "required_scope": {
            "type": "string",
            "description": "forbidden (403) for want of a scope only: the scope needed, "
            "missing from the credential or from your access to the dataset.",
        },
        "min_seq": {"type": "integer", "description": "gone (410) only: the oldest seq kept."},
        "last_seq": {"type": "integer", "description": "gone (410) only: the feed's head."},
        "incarnation": {
            "type": "string",
            "description": "gone (410) only: the dataset's current incarnation.",
        },
    },
}


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

    @classmethod
    def missing(cls) -> Unauthorized:
        """The answer to a request that sends no credential where one is needed."""
        return cls(
            "Send an API key or access token as 'Authorization: Bearer <token>'.",
            error="invalid_request",
            reason="missing",
        )


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
