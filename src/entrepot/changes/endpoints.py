"""HTTP routes for the change feed: JSON pages with long poll, or Server-Sent Events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.auth.feed_reader import CurrentFeedReader
from entrepot.auth.tickets import QUERY_PARAMETER, StreamTickets
from entrepot.changes import service as feed_service
from entrepot.changes.follow import MAX_WAIT_SECONDS, Follower
from entrepot.changes.incarnation import HEADER as INCARNATION_HEADER
from entrepot.changes.incarnation import incarnation_of
from entrepot.changes.models import ChangePage, StreamTicket
from entrepot.changes.service import FeedPage, FeedService
from entrepot.http import StrictJsonRoute
from entrepot.parts import components
from entrepot.problems import BadRequest
from entrepot.settings import Settings
from entrepot.work_deps import Work

router = APIRouter(prefix="/v1/datasets/{ds}", tags=["changes"], route_class=StrictJsonRoute)

LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
}
HEARTBEAT_SECONDS = 15.0  # unless ENTREPOT_FEED_HEARTBEAT_SECONDS says otherwise


def _heartbeat(request: Request) -> float:
    seconds: float = getattr(
        components(request).get(Settings), "feed_heartbeat_seconds", HEARTBEAT_SECONDS
    )
    return seconds


def _service(request: Request) -> Follower:
    follower: Follower = components(request).get(Follower)
    return follower


def _resume_point(request: Request, after: int) -> int:
    last_event = request.headers.get("last-event-id")
    if last_event is None or last_event == "":
        return after
    try:
        value = int(last_event)
    except ValueError:
        raise BadRequest(
            "Last-Event-ID must be a seq (an integer).",
            errors=[{"path": "header:Last-Event-ID", "message": "not an integer"}],
        ) from None
    if value < 0:
        raise BadRequest(
            "Last-Event-ID cannot be negative.",
            errors=[{"path": "header:Last-Event-ID", "message": "negative"}],
        )
    return value


async def _disconnected(request: Request) -> None:
    """Returns once the client has gone (a GET's empty body is read on the way)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(request: Request, work: Awaitable[FeedPage]) -> FeedPage:
    """``work``, abandoned the moment the client goes away: a long poll holds nothing
    for a client that is no longer there."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        raise ClientDisconnect
    return task.result()


@router.get(
    "/changes",
    summary="Changes after a seq, in commit order (long poll with wait, or SSE)",
    openapi_extra={"parameters": [LAST_EVENT_ID]},
    responses={
        200: {
            "description": "A page of changes (JSON), or an event stream (`Accept: "
            "text/event-stream`): each event `id: <seq>`, `data: <change>`; `event: gone` "
            "when the position cannot be continued from.",
            "model": ChangePage,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "headers": {
                INCARNATION_HEADER: {
                    "description": "The dataset's incarnation.",
                    "schema": {"type": "string"},
                }
            },
        },
    },
)
async def read_changes(
    ds: str,
    request: Request,
    reader: CurrentFeedReader,
    after: Annotated[
        int, Query(ge=0, le=2**62, description="Return changes with seq > after.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Long-poll up to this many seconds.")
    ] = 0,
    incarnation: Annotated[
        str | None,
        Query(
            max_length=40,
            description="The incarnation `after` belongs to (from a feed response or the "
            "export's X-Entrepot-Incarnation header): 410 if the dataset has been deleted and "
            "created again since.",
        ),
    ] = None,
    ticket: Annotated[
        str | None,
        Query(
            alias=QUERY_PARAMETER,
            description="A stream ticket (POST .../changes/tickets) instead of an "
            "Authorization header: for `EventSource`, which cannot send one. Event streams "
            "only.",
        ),
    ] = None,
) -> Response:
    service = _service(request)
    principal = reader.principal
    if "text/event-stream" in request.headers.get("accept", ""):
        start = _resume_point(request, after)
        # No access is refused before the stream starts, as a problem; a position the
        # feed cannot continue from is told in the stream (event: gone), which an
        # EventSource can read, where it would only see a failed connection.
        view = await service.view(principal, ds)
        # A ticket follows the life of the dataset it was issued for: a dataset deleted
        # and created again under its name ends its stream with `gone`.
        current = reader.incarnation or incarnation_of(view.access.meta.id)
        return StreamingResponse(
            service.stream(
                principal,
                ds,
                start,
                _heartbeat(request),
                incarnation or current,
                credential=reader.recheck,
            ),
            media_type="text/event-stream",
            headers={
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                INCARNATION_HEADER: incarnation or current,
            },
        )
    poll = service.poll(principal, ds, after, limit, wait, incarnation)
    page = await (_unless_disconnected(request, poll) if wait > 0 else poll)
    return Response(
        page.body(),
        media_type="application/json",
        headers={INCARNATION_HEADER: page.incarnation},
    )


@router.post(
    "/changes/tickets",
    response_model=StreamTicket,
    summary="A short-lived ticket that opens this feed's event stream (for browsers)",
)
async def issue_stream_ticket(
    ds: str, request: Request, response: Response, principal: CurrentPrincipal, work: Work
) -> Any:
    parts = components(request)
    issued = await feed_service.issue_ticket(
        work, parts.get(FeedService), parts.get(StreamTickets), principal, ds
    )
    response.headers["Cache-Control"] = "no-store"  # a credential: no cache keeps it
    settings: Settings = parts.get(Settings)
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return {
        "ticket": issued.ticket,
        "expires_at": datetime.fromtimestamp(issued.expires_at, UTC),
        "url": f"{base}/v1/datasets/{quote(ds, safe='')}/changes?{QUERY_PARAMETER}={issued.ticket}",
    }
