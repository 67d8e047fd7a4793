"""HTTP routes for reading the audit log (it has no routes that write)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from entrepot.audit import export, service
from entrepot.audit.models import AuditFilter, AuditPage, Outcome
from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.http import StrictJsonRoute
from entrepot.pagination import parse_limit
from entrepot.parts import components
from entrepot.settings import Settings
from entrepot.store.bulk_slots import BulkSlots
from entrepot.streaming import GuardedStreamingResponse, bulk_floor
from entrepot.work_deps import OnDemand, Reading

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=StrictJsonRoute)

NDJSON = "application/x-ndjson"
_MATCH = "Exact match, or a prefix ending in '*'."

Actor = Annotated[str | None, Query(max_length=500, description=_MATCH)]
Action = Annotated[str | None, Query(max_length=200, description=_MATCH)]
Target = Annotated[
    str | None, Query(max_length=2000, description=_MATCH + " E.g. 'dataset:sales*'.")
]
OutcomeParam = Annotated[Outcome | None, Query()]
RequestId = Annotated[str | None, Query(max_length=128, description="An X-Request-ID.")]
Since = Annotated[datetime | None, Query(description="From this time, inclusive (RFC 3339).")]
Until = Annotated[datetime | None, Query(description="Before this time, exclusive (RFC 3339).")]
Org = Annotated[
    str | None, Query(max_length=64, description="Only rows of this organisation (its name).")
]


def _filters(
    actor: str | None,
    action: str | None,
    target: str | None,
    outcome: Outcome | None,
    request_id: str | None,
    since: datetime | None,
    until: datetime | None,
    org: str | None,
) -> AuditFilter:
    return AuditFilter(actor, action, target, outcome, request_id, since, until, org)


@router.get(
    "",
    response_model=AuditPage,
    summary="Read the audit log, newest first (platform and organisation admins)",
)
async def list_audit(
    principal: CurrentPrincipal,
    reading: Reading,
    actor: Actor = None,
    action: Action = None,
    target: Target = None,
    outcome: OutcomeParam = None,
    request_id: RequestId = None,
    since: Since = None,
    until: Until = None,
    org: Org = None,
    limit: Annotated[str | None, Query(description="Page size, 1 to 1000 (default 50).")] = None,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> Any:
    filters = _filters(actor, action, target, outcome, request_id, since, until, org)
    return await service.list_entries(
        reading, principal, filters, cursor=cursor, limit=parse_limit(limit)
    )


@router.get(
    "/export",
    summary="Export the audit log as NDJSON, newest first, streamed",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {"schema": {"type": "string"}}}}},
)
async def export_audit(
    request: Request,
    principal: CurrentPrincipal,
    units: OnDemand,
    actor: Actor = None,
    action: Action = None,
    target: Target = None,
    outcome: OutcomeParam = None,
    request_id: RequestId = None,
    since: Since = None,
    until: Until = None,
    org: Org = None,
) -> StreamingResponse:
    filters = _filters(actor, action, target, outcome, request_id, since, until, org)
    found = components(request)
    chunks = await export.export(units, found.get(BulkSlots), principal, filters)
    return GuardedStreamingResponse(
        chunks,
        bulk_floor(found.get(Settings)),
        media_type=NDJSON,
        headers={"Content-Disposition": 'attachment; filename="audit.ndjson"'},
    )
