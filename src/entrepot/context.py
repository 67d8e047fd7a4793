"""Per-request facts that deep layers need without threading them through calls."""

from __future__ import annotations

from contextvars import ContextVar
from typing import NamedTuple


class RequestContext(NamedTuple):
    request_id: str
    ip: str | None


current_request: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)

# Set, never reset, in the task of a request whose answer was cut short on purpose
# (a client too slow for an export): the server then reports that the app "returned
# without completing response", which is exactly what was meant (see logging.py).
answer_cut: ContextVar[bool] = ContextVar("answer_cut", default=False)
