"""Per-request facts that deep layers need without threading them through calls."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    ip: str | None


current_request: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)
