"""HTTP routes for access requests and grants."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

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
from entrepot.http import StrictJsonRoute
from entrepot.pagination import parse_limit
from entrepot.parts import part
from entrepot.work_deps import Reading, Work

router = APIRouter(prefix="/v1", tags=["access"], route_class=StrictJsonRoute)

Limit = Annotated[str | None, Query(description="Page size, 1 to 1000 (default 50).")]
Cursor = Annotated[str | None, Query(max_length=4096, description="Opaque cursor.")]
DatasetName = Annotated[str | None, Query(max_length=64, description="A dataset name.")]
AppId = Annotated[str | None, Query(max_length=64, description="An application id.")]


Requests = Annotated[AccessService, Depends(part(AccessService))]


@router.post(
    "/datasets/{ds}/access-requests",
    status_code=201,
    response_model=AccessRequest,
    summary="Ask for access to a dataset on behalf of an application",
)
async def create_request(
    ds: str,
    body: AccessRequestCreate,
    principal: CurrentPrincipal,
    access_requests: Requests,
    work: Work,
) -> Any:
    return await access_requests.create_request(work, principal, ds, body)


@router.get(
    "/access-requests",
    response_model=AccessRequestPage,
    summary="Access requests by your apps or for your datasets, newest first",
)
async def list_requests(
    principal: CurrentPrincipal,
    access_requests: Requests,
    reading: Reading,
    status: RequestStatus | None = None,
    dataset: DatasetName = None,
    app: AppId = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await access_requests.list_requests(
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
    request_id: str, principal: CurrentPrincipal, access_requests: Requests, reading: Reading
) -> Any:
    return await access_requests.get_request(reading, principal, request_id)


@router.post(
    "/access-requests/{request_id}/approve",
    response_model=AccessRequest,
    summary="Approve a request, optionally narrowing it; creates a grant",
)
async def approve_request(
    request_id: str,
    body: AccessRequestApprove,
    principal: CurrentPrincipal,
    access_requests: Requests,
    work: Work,
) -> Any:
    return await access_requests.approve(work, principal, request_id, body)


@router.post(
    "/access-requests/{request_id}/reject",
    response_model=AccessRequest,
    summary="Reject a request with a note the requester can read",
)
async def reject_request(
    request_id: str,
    body: AccessRequestReject,
    principal: CurrentPrincipal,
    access_requests: Requests,
    work: Work,
) -> Any:
    return await access_requests.reject(work, principal, request_id, body)


@router.get("/grants", response_model=GrantPage, summary="Grants to your apps or on your datasets")
async def list_grants(
    principal: CurrentPrincipal,
    access_requests: Requests,
    reading: Reading,
    dataset: DatasetName = None,
    app: AppId = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await access_requests.list_grants(
        reading, principal, dataset=dataset, app=app, cursor=cursor, limit=parse_limit(limit)
    )


@router.get("/grants/{grant_id}", response_model=Grant)
async def get_grant(
    grant_id: str, principal: CurrentPrincipal, access_requests: Requests, reading: Reading
) -> Any:
    return await access_requests.get_grant(reading, principal, grant_id)


@router.delete(
    "/grants/{grant_id}", status_code=204, summary="Revoke a grant, on every replica at once"
)
async def revoke_grant(
    grant_id: str, principal: CurrentPrincipal, access_requests: Requests, work: Work
) -> Response:
    await access_requests.revoke(work, principal, grant_id)
    return Response(status_code=204)
