"""HTTP routes for applications and API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from entrepot.apps.models import (
    App,
    AppCreate,
    AppCreated,
    AppPage,
    AppPatch,
    ClientSecret,
    KeyCreate,
    KeyCreated,
    KeyPage,
    KeyRotate,
    KeyRotated,
)
from entrepot.apps.service import AppService
from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.http import StrictJsonRoute
from entrepot.pagination import parse_limit
from entrepot.parts import part
from entrepot.work_deps import Reading, Work

router = APIRouter(prefix="/v1/apps", tags=["apps"], route_class=StrictJsonRoute)

Limit = Annotated[str | None, Query(description="Page size, 1 to 1000 (default 50).")]
Cursor = Annotated[str | None, Query(max_length=4096)]


Apps = Annotated[AppService, Depends(part(AppService))]


@router.post("", status_code=201, response_model=AppCreated, summary="Register an application")
async def create_app(body: AppCreate, principal: CurrentPrincipal, apps: Apps, work: Work) -> Any:
    return await apps.create(work, principal, body)


@router.get("", response_model=AppPage, summary="List the applications you manage")
async def list_apps(
    principal: CurrentPrincipal,
    apps: Apps,
    reading: Reading,
    org: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await apps.list_apps(
        reading, principal, org=org, cursor=cursor, limit=parse_limit(limit)
    )


@router.get("/{app}", response_model=App)
async def get_app(app: str, principal: CurrentPrincipal, apps: Apps, reading: Reading) -> Any:
    return await apps.get(reading, principal, app)


@router.patch("/{app}", response_model=App, summary="Update or disable an application")
async def update_app(
    app: str, body: AppPatch, principal: CurrentPrincipal, apps: Apps, work: Work
) -> Any:
    return await apps.update(work, principal, app, body)


@router.delete("/{app}", status_code=204)
async def delete_app(app: str, principal: CurrentPrincipal, apps: Apps, work: Work) -> Response:
    await apps.delete(work, principal, app)
    return Response(status_code=204)


@router.post(
    "/{app}/rotate-secret",
    response_model=ClientSecret,
    summary="Replace the OAuth client secret (the old one stops at once)",
)
async def rotate_secret(app: str, principal: CurrentPrincipal, apps: Apps, work: Work) -> Any:
    return await apps.rotate_secret(work, principal, app)


@router.post("/{app}/keys", status_code=201, response_model=KeyCreated, summary="Issue an API key")
async def create_key(
    app: str, body: KeyCreate, principal: CurrentPrincipal, apps: Apps, work: Work
) -> Any:
    return await apps.create_key(work, principal, app, body)


@router.get("/{app}/keys", response_model=KeyPage, summary="List keys (never their secrets)")
async def list_keys(
    app: str,
    principal: CurrentPrincipal,
    apps: Apps,
    reading: Reading,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await apps.list_keys(reading, principal, app, cursor=cursor, limit=parse_limit(limit))


@router.delete(
    "/{app}/keys/{key_id}", status_code=204, summary="Revoke a key, on every replica at once"
)
async def revoke_key(
    app: str, key_id: str, principal: CurrentPrincipal, apps: Apps, work: Work
) -> Response:
    await apps.revoke_key(work, principal, app, key_id)
    return Response(status_code=204)


@router.post(
    "/{app}/keys/{key_id}/rotate",
    status_code=201,
    response_model=KeyRotated,
    summary="Issue a replacement key; the old one works until the overlap ends",
)
async def rotate_key(
    app: str, key_id: str, body: KeyRotate, principal: CurrentPrincipal, apps: Apps, work: Work
) -> Any:
    return await apps.rotate_key(work, principal, app, key_id, body)
