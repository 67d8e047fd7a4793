"""HTTP routes for organisations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.http import Cursor, Limit, StrictJsonRoute
from entrepot.orgs import service
from entrepot.orgs.models import Org, OrgCreate, OrgPage
from entrepot.pagination import parse_limit
from entrepot.work_deps import Reading, Work

router = APIRouter(prefix="/v1", route_class=StrictJsonRoute)


@router.post("/orgs", status_code=201, response_model=Org, tags=["orgs"])
async def create_org(body: OrgCreate, principal: CurrentPrincipal, work: Work) -> Any:
    return await service.create_org(work, principal, body.name, body.title)


@router.get("/orgs", response_model=OrgPage, tags=["orgs"])
async def list_orgs(
    principal: CurrentPrincipal, reading: Reading, limit: Limit = None, cursor: Cursor = None
) -> Any:
    return await service.list_orgs(reading, principal, cursor=cursor, limit=parse_limit(limit))


@router.get("/orgs/{org}", response_model=Org, tags=["orgs"])
async def get_org(org: str, principal: CurrentPrincipal, reading: Reading) -> Any:
    return await service.get_org(reading, principal, org)
