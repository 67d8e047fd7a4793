"""HTTP routes for users, password login and organisation members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.http import Cursor, Limit
from entrepot.pagination import parse_limit
from entrepot.users.models import (
    Me,
    Member,
    MemberAdd,
    MemberPage,
    TokenRequest,
    TokenResponse,
    User,
    UserCreate,
    UserPatch,
)
from entrepot.users.service import UserService
from entrepot.work_deps import OnDemand, Reading, Work

router = APIRouter(prefix="/v1")


def _service(request: Request) -> UserService:
    service: UserService = request.app.state.users
    return service


@router.post(
    "/users",
    status_code=201,
    response_model=User,
    tags=["users"],
    summary="Create a user (platform admins only)",
)
async def create_user(
    body: UserCreate, request: Request, principal: CurrentPrincipal, reading: Reading
) -> Any:
    # Hashes the password outside any transaction, then a short one (the service
    # opens it on this request's connection). A comment: a docstring would be the
    # operation's OpenAPI description.
    return await _service(request).create_user(reading, principal, body)


@router.get(
    "/users/me",
    response_model=Me,
    tags=["users"],
    summary="The calling user and its memberships (404 for app and admin keys)",
)
async def get_me(request: Request, principal: CurrentPrincipal, reading: Reading) -> Any:
    return await _service(request).me(reading, principal)


@router.patch(
    "/users/{user_id}",
    response_model=User,
    tags=["users"],
    summary="Disable or re-enable a user (platform admins only; takes effect at once)",
)
async def update_user(
    user_id: str, body: UserPatch, request: Request, principal: CurrentPrincipal, work: Work
) -> Any:
    return await _service(request).update_user(work, principal, user_id, body)


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    tags=["users"],
    summary="Exchange a user's email and password for an access token",
)
async def login(body: TokenRequest, request: Request, response: Response, units: OnDemand) -> Any:
    # The Argon2 verification holds no connection: the service runs its lookup and
    # its audit rows on short units of their own (a comment: a docstring would be
    # the operation's OpenAPI description).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return await _service(request).login(units, body.email, body.password)


@router.post(
    "/orgs/{org}/members",
    status_code=201,
    response_model=Member,
    responses={200: {"model": Member, "description": "The user was a member: role updated."}},
    tags=["orgs"],
    summary="Add a member to an organisation, or change its role",
)
async def add_member(
    org: str,
    body: MemberAdd,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    work: Work,
) -> Any:
    member, created = await _service(request).add_member(work, principal, org, body)
    if not created:
        response.status_code = 200
    return member


@router.get(
    "/orgs/{org}/members",
    response_model=MemberPage,
    tags=["orgs"],
    summary="List an organisation's members",
)
async def list_members(
    org: str,
    request: Request,
    principal: CurrentPrincipal,
    reading: Reading,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await _service(request).list_members(
        reading, principal, org, cursor=cursor, limit=parse_limit(limit)
    )


@router.delete(
    "/orgs/{org}/members/{user_id}",
    status_code=204,
    tags=["orgs"],
    summary="Remove a member (its tokens lose the org's access at once)",
)
async def remove_member(
    org: str, user_id: str, request: Request, principal: CurrentPrincipal, work: Work
) -> Response:
    await _service(request).remove_member(work, principal, org, user_id)
    return Response(status_code=204)
