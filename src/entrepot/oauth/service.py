"""OAuth 2.0 client credentials (RFC 6749 4.4) and signing-key administration.

The token endpoint speaks RFC 6749, not RFC 9457: its errors are the
``{error, error_description}`` JSON of section 5.2, raised here as
:class:`OAuthError` and rendered by the endpoint. Every token issued and
every failed client authentication is audited; secrets never are.

A token request runs in two parts with the app's admission by its plan
between them, and no connection held across it (the limiter takes its own):
the client's authentication reads on a connection of its own, its refusals
audited like any denial, outside a transaction; then the token is issued in
the request's unit of work, its audit row (or the scope refusal's) committed
before the answer.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus

from entrepot.apps.repository import ClientApp, find_app_by_client_id
from entrepot.apps.service import secret_digest
from entrepot.auditing.log import record
from entrepot.auth.tokens import ALGORITHM, TokenService
from entrepot.oauth import repository as repo
from entrepot.oauth.models import ErrorCode
from entrepot.oauth.repository import SigningKey
from entrepot.pagination import decode_cursor, encode_cursor, fingerprint, invalid_cursor
from entrepot.principal import SCOPES, Principal, require_platform_admin
from entrepot.store.types import Conn
from entrepot.store.work import Reads, UnitOfWork

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
GRANT_TYPE = "client_credentials"
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
MAX_FORM_FIELDS = 32
MAX_CLIENT_ID = 200
# RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
_KNOWN_PARAMS = ("grant_type", "scope", "client_id", "client_secret")
# Compared against when the client is unknown, so both paths cost the same.
_NO_CLIENT_DIGEST = secret_digest("entrepot: no such client")

AuthMethod = Literal["client_secret_basic", "client_secret_post"]


class OAuthError(Exception):
    """An RFC 6749 5.2 error. ``invalid_client`` is a 401 with a Basic challenge
    (RFC 6749 5.2 for Basic attempts; RFC 9110 requires the challenge on any 401);
    everything else is a 400. Descriptions never echo client input."""

    def __init__(self, error: ErrorCode, description: str) -> None:
        super().__init__(description)
        self.error: ErrorCode = error
        self.description = description
        self.status = 401 if error == "invalid_client" else 400


@dataclass(frozen=True)
class TokenRequest:
    grant_type: str | None
    scope: str | None
    client_id: str | None
    client_secret: str | None
    method: AuthMethod | None
    auth_failure: str | None = None  # why client authentication cannot succeed, if known


def _form(content_type: str | None, body: bytes) -> dict[str, str]:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise OAuthError(
            "invalid_request", "The token request body must be application/x-www-form-urlencoded."
        )
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "The form body is not valid UTF-8 form data.") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name not in _KNOWN_PARAMS:
            continue  # RFC 6749 3.2: unrecognised parameters are ignored
        if "\x00" in value:
            raise OAuthError("invalid_request", f"The {name} parameter contains NUL.")
        if value == "":
            continue  # RFC 6749 3.1: a parameter without a value counts as omitted
        if name in params:
            raise OAuthError("invalid_request", f"The {name} parameter is repeated.")
        params[name] = value
    return params


def _basic(credentials: str) -> tuple[str, str] | None:
    """Decode RFC 7617 credentials whose parts are form-urlencoded (RFC 6749 2.3.1)."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon:
        return None
    try:
        client_id = unquote_plus(user, errors="strict")
        client_secret = unquote_plus(password, errors="strict")
    except UnicodeDecodeError:
        return None
    if not client_id or "\x00" in client_id + client_secret:
        return None
    return client_id, client_secret


def parse_token_request(
    content_type: str | None, authorization: str | None, body: bytes
) -> TokenRequest:
    """The form and the client's credentials, refusing what RFC 6749 calls malformed."""
    params = _form(content_type, body)
    form_id, form_secret = params.get("client_id"), params.get("client_secret")

    def made(
        client_id: str | None,
        client_secret: str | None,
        method: AuthMethod | None,
        failure: str | None = None,
    ) -> TokenRequest:
        return TokenRequest(
            params.get("grant_type"), params.get("scope"), client_id, client_secret, method, failure
        )

    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if form_secret is not None:
            raise OAuthError(
                "invalid_request",
                "Use one client authentication method: HTTP Basic or form fields, not both.",
            )
        if scheme.lower() != "basic":
            return made(form_id, None, None, "unsupported_scheme")
        decoded = _basic(credentials)
        if decoded is None:
            return made(None, None, "client_secret_basic", "malformed_basic")
        client_id, client_secret = decoded
        if form_id is not None and form_id != client_id:
            raise OAuthError(
                "invalid_request", "The client_id field disagrees with the Basic credentials."
            )
        return made(client_id, client_secret, "client_secret_basic")
    if form_secret is not None and form_id is None:
        raise OAuthError("invalid_request", "client_secret was sent without client_id.")
    if form_id is None:
        return made(None, None, None, "no_credentials")
    if form_secret is None:
        return made(form_id, None, "client_secret_post", "no_secret")
    return made(form_id, form_secret, "client_secret_post")


def _requested_scopes(raw: str | None, held: list[str]) -> list[str]:
    if raw is None:
        return sorted(set(held))
    tokens = [t for t in raw.split(" ") if t]
    if not tokens or not all(_SCOPE_TOKEN.match(t) for t in tokens):
        raise OAuthError("invalid_scope", "scope must be space-separated scope names.")
    unknown = [t for t in tokens if t not in SCOPES]
    if unknown:
        raise OAuthError(
            "invalid_scope", f"Unknown scopes requested; known scopes are: {' '.join(SCOPES)}."
        )
    extra = sorted(set(tokens) - set(held))
    if extra:
        raise OAuthError(
            "invalid_scope", f"The application does not hold these scopes: {' '.join(extra)}."
        )
    return sorted(set(tokens))


def server_metadata(issuer: str, base_url: str) -> dict[str, Any]:
    """RFC 8414 metadata; ``base_url`` is the public URL the endpoints answer on."""
    base = base_url.rstrip("/")
    return {
        "issuer": issuer,
        "token_endpoint": f"{base}/oauth/token",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": [GRANT_TYPE],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "scopes_supported": list(SCOPES),
        "response_types_supported": [],
    }


def signing_key_out(row: SigningKey) -> dict[str, Any]:
    return {
        "kid": row.kid,
        "alg": row.alg,
        "created_at": row.created_at,
        "retired_at": row.retired_at,
        "publish_until": row.publish_until,
    }


Admit = Callable[[Principal], Awaitable[None]]


class OAuthService:
    def __init__(self, tokens: TokenService, admit: Admit | None = None) -> None:
        self.tokens = tokens
        # Token requests count against the app's plan like any other request: each
        # issued token is an audit row, so an unlimited endpoint would bypass the plan.
        self.admit = admit

    async def _refuse_client(
        self, conn: Conn, request: TokenRequest, reason: str, app: ClientApp | None = None
    ) -> OAuthError:
        client_id = (request.client_id or "")[:MAX_CLIENT_ID] or None
        await record(
            conn,
            None,
            "oauth.token",
            f"app:{app.id}" if app is not None else (f"client:{client_id}" if client_id else None),
            outcome="denied",
            status=401,
            actor=f"app:{app.id}" if app is not None else None,
            app_id=app.id if app is not None else None,
            org_id=app.org_id if app is not None else None,
            details={
                "error": "invalid_client",
                "reason": reason,
                "method": request.method,
                "client_id": client_id,
            },
        )
        return OAuthError("invalid_client", "Client authentication failed.")

    async def _authenticate_client(self, conn: Conn, request: TokenRequest) -> ClientApp:
        if request.auth_failure is not None:
            raise await self._refuse_client(conn, request, request.auth_failure)
        assert request.client_id is not None
        assert request.client_secret is not None
        app = None
        if len(request.client_id) <= MAX_CLIENT_ID:
            app = await find_app_by_client_id(conn, request.client_id)
        expected = bytes(app.client_secret_digest) if app is not None else _NO_CLIENT_DIGEST
        matches = hmac.compare_digest(secret_digest(request.client_secret), expected)
        if app is None:
            raise await self._refuse_client(conn, request, "unknown_client")
        if not matches:
            raise await self._refuse_client(conn, request, "wrong_secret", app)
        if app.disabled:
            raise await self._refuse_client(conn, request, "app_disabled", app)
        return app

    async def client(self, reads: Reads, request: TokenRequest) -> ClientApp:
        """The token request's grant and client, checked (RFC 6749 2.3, 4.4); a failed
        client authentication is audited on ``reads`` (a denial: no transaction)."""
        if request.grant_type is None:
            raise OAuthError("invalid_request", "grant_type is required.")
        if request.grant_type != GRANT_TYPE:
            raise OAuthError(
                "unsupported_grant_type", "Only the client_credentials grant is supported."
            )
        return await self._authenticate_client(reads.conn, request)

    async def admit_client(self, app: ClientApp) -> None:
        """Count the request against the app's plan (429 beyond it); call it holding no
        connection, since the limiter may take one."""
        if self.admit is not None:
            await self.admit(
                Principal(
                    "app",
                    f"app:{app.id}",
                    f"client:{app.client_id}",
                    frozenset(app.scopes),
                    app_id=app.id,
                    org_id=app.org_id,
                    plan=app.plan,
                )
            )

    async def token(
        self, work: UnitOfWork, app: ClientApp, request: TokenRequest
    ) -> dict[str, Any]:
        """Issue the admitted client's token. A scope refusal is audited in ``work`` and
        raised: the edge answers it and lets the unit commit, so its row stays."""
        try:
            scopes = _requested_scopes(request.scope, list(app.scopes))
        except OAuthError as refused:
            await record(
                work.conn,
                None,
                "oauth.token",
                f"app:{app.id}",
                outcome="denied",
                status=400,
                actor=f"app:{app.id}",
                app_id=app.id,
                org_id=app.org_id,
                details={"error": refused.error, "method": request.method},
            )
            raise
        issued = await self.tokens.issue(
            subject=f"app:{app.id}", scopes=scopes, client_id=app.client_id, conn=work.conn
        )
        await record(
            work.conn,
            None,
            "credential.issued",
            f"token:{issued.jti}",
            actor=f"app:{app.id}",
            app_id=app.id,
            org_id=app.org_id,
            details={
                "kind": "access_token",
                "jti": issued.jti,
                "scope": issued.scope,
                "method": request.method,
                "expires_in": issued.expires_in,
            },
        )
        return {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }

    # --- signing keys (platform administrators) --------------------------

    async def rotate_signing_key(self, work: UnitOfWork, principal: Principal) -> dict[str, Any]:
        require_platform_admin(principal)
        retired_kids: list[str] = []

        async def audit(conn: Any, kid: str, retired: list[str]) -> None:
            retired_kids.extend(retired)
            await record(
                conn,
                principal,
                "credential.rotated",
                f"signing_key:{kid}",
                details={"kind": "signing_key", "alg": ALGORITHM, "retired": retired},
            )

        kid = await self.tokens.rotate(work, audit)
        return {"kid": kid, "retired": retired_kids}

    async def list_signing_keys(
        self, reads: Reads, principal: Principal, *, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        require_platform_admin(principal)
        fp = fingerprint("signing_keys")
        after: tuple[datetime, str] | None = None
        if cursor:
            position = decode_cursor(cursor, fp)
            try:
                after = (datetime.fromisoformat(position[0]), str(position[1]))
            except (IndexError, TypeError, ValueError):
                raise invalid_cursor() from None
        rows = await repo.list_signing_keys(reads.conn, after=after, limit=limit + 1)
        items = [signing_key_out(r) for r in rows[:limit]]
        more = len(rows) > limit
        last = rows[limit - 1] if more else None
        return {
            "data": items,
            "next_cursor": (
                encode_cursor([last.created_at.isoformat(), last.kid], fp) if last else None
            ),
        }
