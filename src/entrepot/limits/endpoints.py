"""HTTP routes for plans (an app's usage report is `entrepot.apps.usage_endpoints`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.http import StrictJsonRoute
from entrepot.limits.models import Plan, PlanCreate, PlanPage, PlanPatch
from entrepot.limits.service import PlanService
from entrepot.pagination import parse_limit
from entrepot.parts import part
from entrepot.work_deps import Reading, Work

router = APIRouter(tags=["plans and usage"], route_class=StrictJsonRoute)


Plans = Annotated[PlanService, Depends(part(PlanService))]


@router.post("/v1/plans", status_code=201, response_model=Plan, summary="Create a plan (admins)")
async def create_plan(
    body: PlanCreate, principal: CurrentPrincipal, plans: Plans, work: Work
) -> Any:
    return await plans.create(work, principal, body)


@router.get("/v1/plans", response_model=PlanPage, summary="List plans")
async def list_plans(
    principal: CurrentPrincipal,
    plans: Plans,
    reading: Reading,
    limit: Annotated[str | None, Query(description="Page size, 1 to 1000 (default 50).")] = None,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> Any:
    return await plans.list_plans(reading, cursor, parse_limit(limit))


@router.get("/v1/plans/{plan}", response_model=Plan)
async def get_plan(plan: str, principal: CurrentPrincipal, plans: Plans, reading: Reading) -> Any:
    return await plans.get(reading, plan)


@router.patch("/v1/plans/{plan}", response_model=Plan, summary="Change a plan's limits (admins)")
async def update_plan(
    plan: str, body: PlanPatch, principal: CurrentPrincipal, plans: Plans, work: Work
) -> Any:
    return await plans.update(work, principal, plan, body)


@router.delete("/v1/plans/{plan}", status_code=204, summary="Delete an unused plan (admins)")
async def delete_plan(plan: str, principal: CurrentPrincipal, plans: Plans, work: Work) -> Response:
    await plans.delete(work, principal, plan)
    return Response(status_code=204)
