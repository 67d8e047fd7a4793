"""HTTP routes for the change feed: JSON pages with long poll, or Server-Sent Events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.changes.service import MAX_WAIT_SECONDS, FeedService
from entrepot.problems import BadRequest

router = APIRouter(prefix="/v1/datasets/{ds}", tags=["changes"])

HEARTBEAT_SECONDS = 15.0  # unless ENTREPOT_FEED_HEARTBEAT_SECONDS says otherwise


def _heartbeat(request: Request) -> float:
    seconds: float = getattr(
        request.app.state.settings, "feed_heartbeat_seconds", HEARTBEAT_SECONDS
    )
    return seconds


def _service(request: Request) -> FeedService:
    service: FeedService = request.app.state.feed
    return service


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


@router.get(
    "/changes",
    summary="Changes after a seq, in commit order (long poll with wait, or SSE)",
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/event-stream": {"schema": {"type": "string"}},
            }
        }
    },
)
async def read_changes(
    ds: str,
    request: Request,
    principal: CurrentPrincipal,
    after: Annotated[
        int, Query(ge=0, le=2**62, description="Return changes with seq > after.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Long-poll up to this many seconds.")
    ] = 0,
) -> Response:
    service = _service(request)
    if "text/event-stream" in request.headers.get("accept", ""):
        start = _resume_point(request, after)
        await service.view(principal, ds)  # refuse before the stream starts, as a problem
        return StreamingResponse(
            service.stream(principal, ds, start, _heartbeat(request)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    page = await service.poll(principal, ds, after, limit, wait)
    return Response(page.body(), media_type="application/json")
