"""HTTP routes for plans and per-app usage."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from entrepot.apps.service import AppService
from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.limits.meter import UsageMeter
from entrepot.limits.models import Granularity, Plan, PlanCreate, PlanPage, PlanPatch, Usage
from entrepot.limits.service import PlanService, usage_report, usage_window
from entrepot.pagination import parse_limit
from entrepot.store.work import reads
from entrepot.work_deps import Reading, Work

router = APIRouter(tags=["plans and usage"])


def _plans(request: Request) -> PlanService:
    service: PlanService = request.app.state.plans
    return service


@router.post("/v1/plans", status_code=201, response_model=Plan, summary="Create a plan (admins)")
async def create_plan(
    body: PlanCreate, request: Request, principal: CurrentPrincipal, work: Work
) -> Any:
    return await _plans(request).create(work, principal, body)


@router.get("/v1/plans", response_model=PlanPage, summary="List plans")
async def list_plans(
    request: Request,
    principal: CurrentPrincipal,
    reading: Reading,
    limit: Annotated[str | None, Query(description="Page size, 1 to 1000 (default 50).")] = None,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> Any:
    return await _plans(request).list_plans(reading, cursor, parse_limit(limit))


@router.get("/v1/plans/{plan}", response_model=Plan, summary="One plan")
async def get_plan(
    plan: str, request: Request, principal: CurrentPrincipal, reading: Reading
) -> Any:
    return await _plans(request).get(reading, plan)


@router.patch("/v1/plans/{plan}", response_model=Plan, summary="Change a plan's limits (admins)")
async def update_plan(
    plan: str, body: PlanPatch, request: Request, principal: CurrentPrincipal, work: Work
) -> Any:
    return await _plans(request).update(work, principal, plan, body)


@router.delete("/v1/plans/{plan}", status_code=204, summary="Delete an unused plan (admins)")
async def delete_plan(
    plan: str, request: Request, principal: CurrentPrincipal, work: Work
) -> Response:
    await _plans(request).delete(work, principal, plan)
    return Response(status_code=204)


@router.get(
    "/v1/apps/{app}/usage",
    response_model=Usage,
    summary="Request counts by period, endpoint class and status",
)
async def app_usage(
    app: str,
    request: Request,
    principal: CurrentPrincipal,
    granularity: Granularity = "hour",
    start: Annotated[
        datetime | None,
        Query(alias="from", description="Inclusive (RFC 3339); default: a span ago."),
    ] = None,
    end: Annotated[
        datetime | None, Query(alias="to", description="Exclusive (RFC 3339); default: now.")
    ] = None,
) -> Any:
    # Two short reads with the meter's flush between them: the flush takes a pooled
    # connection of its own, so this request holds none while it runs (one at a time).
    apps: AppService = request.app.state.apps
    pool = request.app.state.pool
    async with reads(pool) as reading:  # released before the flush
        seen = await apps.get(reading, principal, app)  # visible to its org's admins and the app
    window = usage_window(granularity, start, end)
    meter: UsageMeter = request.app.state.meter
    await meter.flush()  # this replica's latest counts are in the report
    async with reads(pool) as reading:
        return await usage_report(reading, uuid.UUID(seen["id"]), granularity, *window)
