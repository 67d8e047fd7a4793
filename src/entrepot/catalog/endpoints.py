"""HTTP routes for datasets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from entrepot.access.resolver import AccessResolver
from entrepot.auth.authenticate import CurrentPrincipal, CurrentReader
from entrepot.catalog import service
from entrepot.catalog.models import (
    Dataset,
    DatasetCreate,
    DatasetPage,
    DatasetPatch,
)
from entrepot.http import Cursor, Limit, StrictJsonRoute
from entrepot.pagination import parse_limit
from entrepot.parts import part
from entrepot.work_deps import Reading, Work

router = APIRouter(prefix="/v1", route_class=StrictJsonRoute)

Access = Annotated[AccessResolver, Depends(part(AccessResolver))]


@router.post("/datasets", status_code=201, response_model=Dataset, tags=["datasets"])
async def create_dataset(
    body: DatasetCreate, response: Response, principal: CurrentPrincipal, work: Work
) -> Any:
    created = await service.create_dataset(work, principal, body)
    response.headers["Location"] = f"/v1/datasets/{created['name']}"
    return created


@router.get("/datasets", response_model=DatasetPage, tags=["datasets"])
async def list_datasets(
    principal: CurrentReader,
    reading: Reading,
    q: Annotated[str | None, Query(max_length=200, description="Full-text search.")] = None,
    org: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await service.list_datasets(
        reading,
        principal,
        q=q,
        org=org,
        tag=tag,
        cursor=cursor,
        limit=parse_limit(limit),
    )


@router.get("/datasets/{ds}", response_model=Dataset, tags=["datasets"])
async def get_dataset(ds: str, principal: CurrentReader, access: Access, reading: Reading) -> Any:
    return await service.get_dataset(reading, access, principal, ds)


@router.patch("/datasets/{ds}", response_model=Dataset, tags=["datasets"])
async def update_dataset(
    ds: str, body: DatasetPatch, principal: CurrentPrincipal, access: Access, reading: Reading
) -> Any:
    # Runs online: its slow parts outside any transaction, then a short one (the
    # service opens it on this request's connection). A comment: a docstring would be
    # the operation's OpenAPI description (entrepot.reference.operations has it).
    return await service.update_dataset(reading, access, principal, ds, body)


@router.delete("/datasets/{ds}", status_code=204, tags=["datasets"])
async def delete_dataset(
    ds: str, principal: CurrentPrincipal, access: Access, work: Work
) -> Response:
    await service.delete_dataset(work, access, principal, ds)
    return Response(status_code=204)
