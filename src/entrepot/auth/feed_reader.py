"""The change feed's one auth step: a bearer, or a stream ticket for its event stream.

Only the feed's GET takes ``?ticket=``; every other route reads the Authorization
header alone, where a ticket is refused (it is no access token).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from entrepot.auth.authenticate import Gate, authenticate_reader, recheck
from entrepot.auth.tickets import QUERY_PARAMETER, STATE_KEY, StreamTickets, ticket_principal
from entrepot.parts import components
from entrepot.principal import Principal
from entrepot.problems import BadRequest, Forbidden, Unauthorized

FEED_SCOPE = "changes:read"  # all a stream needs of its caller's credential when re-checked


@dataclass(frozen=True, slots=True)
class FeedReader:
    """Who reads a feed; how a stream asks again whether its credential still holds
    (revoked: 401); and the incarnation a ticket was issued for (None: a bearer)."""

    principal: Principal
    recheck: Callable[[], Awaitable[Principal]]
    incarnation: str | None = None


async def feed_reader(request: Request) -> FeedReader:
    """The bearer (or none, for an open dataset), or a ticket for this dataset's event
    stream: the feed's one auth step."""
    raw = request.scope.get("state", {}).get(STATE_KEY)  # take_from_query put it there
    if raw is None:
        principal = await authenticate_reader(request)
        return FeedReader(principal, lambda: recheck(request, principal, FEED_SCOPE))
    if "authorization" in request.headers:
        raise BadRequest(
            "Send a stream ticket or an Authorization header, not both.",
            errors=[{"path": f"query:{QUERY_PARAMETER}", "message": "with Authorization"}],
        )
    gate = components(request).get(Gate)
    tickets = components(request).get(StreamTickets)
    ip = request.client.host if request.client else None
    try:
        await gate.failures.check(ip)
        ticket = await tickets.read(raw)
        principal = await ticket_principal(gate.pool, ticket)
    except Unauthorized:
        gate.failures.failed(ip)
        raise
    request.state.principal = principal  # a refusal below names its actor
    dataset = request.path_params.get("ds")
    if ticket.dataset != dataset:
        raise Forbidden(
            f"This stream ticket opens the feed of {ticket.dataset!r} only.", denial=True
        )
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise Forbidden(
            "A stream ticket opens the event stream only (Accept: text/event-stream).",
            denial=True,
        )
    request.state.rate_limit = await gate.limiter.admit(principal)
    return FeedReader(principal, lambda: ticket_principal(gate.pool, ticket), ticket.incarnation)


CurrentFeedReader = Annotated[FeedReader, Depends(feed_reader)]
