"""HTTP routes: the token endpoint, JWKS, server metadata and signing-key administration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from entrepot.apps.repository import ClientApp
from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.auth.tokens import TokenService
from entrepot.http import StrictJsonRoute
from entrepot.limits.auth_failures import AuthFailureThrottle
from entrepot.limits.limiter import RateLimiter
from entrepot.oauth.models import (
    Jwks,
    OAuthErrorBody,
    RotatedSigningKey,
    ServerMetadata,
    SigningKeyPage,
    TokenResponse,
)
from entrepot.oauth.service import (
    FORM_MEDIA_TYPE,
    OAuthError,
    OAuthService,
    TokenRequest,
    parse_token_request,
    server_metadata,
)
from entrepot.pagination import parse_limit
from entrepot.parts import components
from entrepot.principal import Principal
from entrepot.settings import Settings
from entrepot.store.work import reads
from entrepot.work_deps import Reading, Work

router = APIRouter(tags=["oauth"], route_class=StrictJsonRoute)
admin_router = APIRouter(
    prefix="/v1/admin/signing-keys", tags=["admin"], route_class=StrictJsonRoute
)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
BASIC_CHALLENGE = 'Basic realm="entrepot"'

GRANT_DOC = """OAuth 2.0 client credentials grant (RFC 6749 section 4.4).

Authenticate the client with HTTP Basic (`client_id:client_secret`, each
form-urlencoded, RFC 6749 section 2.3.1) **or** with `client_id` and `client_secret`
form fields, never both. `scope` (space-separated, optional) narrows the token to a
subset of the application's scopes; without it the token carries all of them.

The access token is a JWT signed with EdDSA; verify it with the keys at
`/.well-known/jwks.json`. Use it as `Authorization: Bearer <token>`.

**Errors on this endpoint are not problem documents.** RFC 6749 section 5.2 mandates
`application/json` bodies of the form `{"error": ..., "error_description": ...}`
with `error` one of `invalid_request`, `invalid_client`, `invalid_grant`,
`unauthorized_client`, `unsupported_grant_type`, `invalid_scope`. `invalid_client`
answers 401 with `WWW-Authenticate: Basic realm="entrepot"`; the others answer 400.
Only errors raised before the request reaches this endpoint (an oversized body, a
wrong method) are problem documents."""

_TOKEN_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "scope": {"type": "string", "description": "Space-separated scopes."},
        "client_id": {"type": "string", "description": "client_secret_post only."},
        "client_secret": {"type": "string", "description": "client_secret_post only."},
    },
    "required": ["grant_type"],
}

_OAUTH_ERROR_CONTENT = {
    "application/json": {"schema": {"$ref": "#/components/schemas/OAuthErrorBody"}}
}


def _service(request: Request) -> OAuthService:
    async def admit(principal: Principal) -> None:
        request.state.principal = principal  # metered as the app's request
        request.state.rate_limit = await components(request).get(RateLimiter).admit(principal)

    return OAuthService(components(request).get(TokenService), admit=admit)


def _tokens(request: Request) -> TokenService:
    tokens: TokenService = components(request).get(TokenService)
    return tokens


def _oauth_error(error: OAuthError) -> Response:
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = BASIC_CHALLENGE
    body = {"error": error.error, "error_description": error.description}
    return Response(
        orjson.dumps(body), status_code=error.status, media_type="application/json", headers=headers
    )


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _refused(request: Request, error: OAuthError) -> Response:
    if error.error == "invalid_client":
        failures: AuthFailureThrottle = components(request).get(AuthFailureThrottle)
        failures.failed(_address(request))
    return _oauth_error(error)


@dataclass(frozen=True)
class TokenClient:
    """The token request's client, authenticated and admitted; or why it was not."""

    request: TokenRequest | None = None
    app: ClientApp | None = None
    refused: OAuthError | None = None


async def _token_client(request: Request) -> TokenClient:
    """The token endpoint's own client authentication (RFC 6749 2.3), resolved like a
    bearer elsewhere: before the route's unit of work, on a connection of its own that
    is given back before the app is admitted by its plan (the limiter may take one)."""
    failures: AuthFailureThrottle = components(request).get(AuthFailureThrottle)
    await failures.check(_address(request))  # an address guessing client secrets is cut off
    service = _service(request)
    try:
        parsed = parse_token_request(
            request.headers.get("content-type"),
            request.headers.get("authorization"),
            await request.body(),
        )
        async with reads(components(request).get(asyncpg.Pool)) as reading:
            app = await service.client(reading, parsed)
    except OAuthError as error:
        return TokenClient(refused=error)
    await service.admit_client(app)
    return TokenClient(parsed, app)


@router.post(
    "/oauth/token",
    summary="Get an access token (OAuth 2.0 client credentials)",
    description=GRANT_DOC,
    response_model=TokenResponse,
    responses={
        400: {
            "description": "RFC 6749 5.2 error (not a problem document)",
            "model": OAuthErrorBody,
        },
        401: {
            "description": "invalid_client: client authentication failed (RFC 6749 5.2)",
            "content": _OAUTH_ERROR_CONTENT,
            "headers": {
                "WWW-Authenticate": {
                    "description": BASIC_CHALLENGE,
                    "schema": {"type": "string"},
                }
            },
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM_MEDIA_TYPE: {"schema": _TOKEN_FORM_SCHEMA}},
        }
    },
)
async def token(
    request: Request, client: Annotated[TokenClient, Depends(_token_client)], work: Work
) -> Response:
    if client.refused is not None:
        return _refused(request, client.refused)
    assert client.request is not None
    assert client.app is not None
    try:
        issued = await _service(request).token(work, client.app, client.request)
    except OAuthError as error:  # audited in the unit, which commits before this answer goes
        return _refused(request, error)
    return Response(orjson.dumps(issued), media_type="application/json", headers=NO_STORE)


@router.get(
    "/.well-known/jwks.json",
    response_model=Jwks,
    summary="Public keys that verify access tokens (JWKS, RFC 7517)",
)
async def jwks(request: Request) -> Response:
    keys = await _tokens(request).jwks()
    return Response(
        orjson.dumps(keys),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get(
    "/.well-known/oauth-authorization-server",
    response_model=ServerMetadata,
    response_model_exclude_none=True,  # RFC 8414: a member with no value is omitted
    summary="Authorization server metadata (RFC 8414)",
)
async def metadata(request: Request) -> Any:
    settings: Settings = components(request).get(Settings)
    base = settings.public_url or str(request.base_url)
    return server_metadata(settings.token_issuer(), base)


@admin_router.post(
    "/rotate",
    response_model=RotatedSigningKey,
    summary="Rotate the token signing key (platform administrators)",
)
async def rotate_signing_key(request: Request, principal: CurrentPrincipal, work: Work) -> Any:
    return await _service(request).rotate_signing_key(work, principal)


@admin_router.get(
    "",
    response_model=SigningKeyPage,
    summary="List token signing keys (never their private material)",
)
async def list_signing_keys(
    request: Request,
    principal: CurrentPrincipal,
    reading: Reading,
    limit: Annotated[str | None, Query(description="Page size, 1 to 1000 (default 50).")] = None,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> Any:
    return await _service(request).list_signing_keys(
        reading, principal, cursor=cursor, limit=parse_limit(limit)
    )
