"""HTTP routes for access requests and grants."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from entrepot.access.models import (
    AccessRequest,
    AccessRequestApprove,
    AccessRequestCreate,
    AccessRequestPage,
    AccessRequestReject,
    Grant,
    GrantPage,
    RequestStatus,
)
from entrepot.access.service import AccessService
from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.pagination import parse_limit
from entrepot.work_deps import Reading, Work

router = APIRouter(prefix="/v1", tags=["access"])

Limit = Annotated[str | None, Query(description="Page size, 1 to 1000 (default 50).")]
Cursor = Annotated[str | None, Query(max_length=4096, description="Opaque cursor.")]
DatasetName = Annotated[str | None, Query(max_length=64, description="A dataset name.")]
AppId = Annotated[str | None, Query(max_length=64, description="An application id.")]


def _service(request: Request) -> AccessService:
    return AccessService(request.app.state.access)


@router.post(
    "/datasets/{ds}/access-requests",
    status_code=201,
    response_model=AccessRequest,
    summary="Ask for access to a dataset on behalf of an application",
)
async def create_request(
    ds: str, body: AccessRequestCreate, request: Request, principal: CurrentPrincipal, work: Work
) -> Any:
    return await _service(request).create_request(work, principal, ds, body)


@router.get(
    "/access-requests",
    response_model=AccessRequestPage,
    summary="Access requests by your apps or for your datasets, newest first",
)
async def list_requests(
    request: Request,
    principal: CurrentPrincipal,
    reading: Reading,
    status: RequestStatus | None = None,
    dataset: DatasetName = None,
    app: AppId = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await _service(request).list_requests(
        reading,
        principal,
        status=status,
        dataset=dataset,
        app=app,
        cursor=cursor,
        limit=parse_limit(limit),
    )


@router.get("/access-requests/{request_id}", response_model=AccessRequest)
async def get_request(
    request_id: str, request: Request, principal: CurrentPrincipal, reading: Reading
) -> Any:
    return await _service(request).get_request(reading, principal, request_id)


@router.post(
    "/access-requests/{request_id}/approve",
    response_model=AccessRequest,
    summary="Approve a request, optionally narrowing it; creates a grant",
)
async def approve_request(
    request_id: str,
    body: AccessRequestApprove,
    request: Request,
    principal: CurrentPrincipal,
    work: Work,
) -> Any:
    return await _service(request).approve(work, principal, request_id, body)


@router.post(
    "/access-requests/{request_id}/reject",
    response_model=AccessRequest,
    summary="Reject a request with a note the requester can read",
)
async def reject_request(
    request_id: str,
    body: AccessRequestReject,
    request: Request,
    principal: CurrentPrincipal,
    work: Work,
) -> Any:
    return await _service(request).reject(work, principal, request_id, body)


@router.get("/grants", response_model=GrantPage, summary="Grants to your apps or on your datasets")
async def list_grants(
    request: Request,
    principal: CurrentPrincipal,
    reading: Reading,
    dataset: DatasetName = None,
    app: AppId = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await _service(request).list_grants(
        reading, principal, dataset=dataset, app=app, cursor=cursor, limit=parse_limit(limit)
    )


@router.get("/grants/{grant_id}", response_model=Grant)
async def get_grant(
    grant_id: str, request: Request, principal: CurrentPrincipal, reading: Reading
) -> Any:
    return await _service(request).get_grant(reading, principal, grant_id)


@router.delete(
    "/grants/{grant_id}", status_code=204, summary="Revoke a grant, on every replica at once"
)
async def revoke_grant(
    grant_id: str, request: Request, principal: CurrentPrincipal, work: Work
) -> Response:
    await _service(request).revoke(work, principal, grant_id)
    return Response(status_code=204)
