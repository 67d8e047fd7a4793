"""HTTP routes for users, password login and organisation members."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.http import Cursor, Limit, StrictJsonRoute
from entrepot.pagination import parse_limit
from entrepot.parts import part
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
    WhoAmI,
)
from entrepot.users.service import UserService
from entrepot.users.whoami import whoami
from entrepot.work_deps import OnDemand, Reading, Work

router = APIRouter(prefix="/v1", route_class=StrictJsonRoute)


Users = Annotated[UserService, Depends(part(UserService))]


@router.post(
    "/users",
    status_code=201,
    response_model=User,
    tags=["users"],
    summary="Create a user (platform admins only)",
)
async def create_user(
    body: UserCreate, request: Request, principal: CurrentPrincipal, users: Users, reading: Reading
) -> Any:
    # Hashes the password outside any transaction, then a short one (the service
    # opens it on this request's connection). A comment: a docstring would be the
    # operation's OpenAPI description.
    return await users.create_user(reading, principal, body)


@router.get("/me", response_model=WhoAmI, tags=["users"], summary="Who this credential is")
async def get_whoami(principal: CurrentPrincipal, reading: Reading) -> Any:
    return await whoami(reading, principal)


@router.get(
    "/users/me",
    response_model=Me,
    tags=["users"],
    summary="The calling user and its memberships (404 for app and admin keys)",
)
async def get_me(principal: CurrentPrincipal, users: Users, reading: Reading) -> Any:
    return await users.me(reading, principal)


@router.patch(
    "/users/{user_id}",
    response_model=User,
    tags=["users"],
    summary="Disable or re-enable a user (platform admins only; takes effect at once)",
)
async def update_user(
    user_id: str, body: UserPatch, principal: CurrentPrincipal, users: Users, work: Work
) -> Any:
    return await users.update_user(work, principal, user_id, body)


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    tags=["users"],
    summary="Exchange a user's email and password for an access token",
)
async def login(body: TokenRequest, response: Response, users: Users, units: OnDemand) -> Any:
    # The Argon2 verification holds no connection: the service runs its lookup and
    # its audit rows on short units of their own (a comment: a docstring would be
    # the operation's OpenAPI description).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return await users.login(units, body.email, body.password)


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
    response: Response,
    principal: CurrentPrincipal,
    users: Users,
    work: Work,
) -> Any:
    member, created = await users.add_member(work, principal, org, body)
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
    principal: CurrentPrincipal,
    users: Users,
    reading: Reading,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await users.list_members(
        reading, principal, org, cursor=cursor, limit=parse_limit(limit)
    )


@router.delete(
    "/orgs/{org}/members/{user_id}",
    status_code=204,
    tags=["orgs"],
    summary="Remove a member (its tokens lose the org's access at once)",
)
async def remove_member(
    org: str, user_id: str, principal: CurrentPrincipal, users: Users, work: Work
) -> Response:
    await users.remove_member(work, principal, org, user_id)
    return Response(status_code=204)
