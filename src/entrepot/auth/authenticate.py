"""The bearer check every /v1 endpoint depends on.

A bearer is an API key (looked up by SHA-256 digest) or a signed access
token (JWT). Either way the live state behind it (key not revoked, app not
disabled, user still a member) is re-read at least once a second per
replica, and at once when any replica announces a revocation over
PostgreSQL NOTIFY: the bound on how long a revoked credential keeps working.
Unknown bearers are never cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, Protocol, TypeVar

import asyncpg
from fastapi import Depends, Request

from entrepot.auditing.log import record
from entrepot.auth import repository as repo
from entrepot.auth.keys import digest, display_prefix
from entrepot.auth.principals import key_principal, subject_principal
from entrepot.auth.tokens import InvalidToken, TokenService, looks_like_jwt
from entrepot.components import Components
from entrepot.headers import first_header
from entrepot.parts import components
from entrepot.principal import Principal, anonymous
from entrepot.problems import Unauthorized
from entrepot.store.work import unit_of_work

T = TypeVar("T")


class CredentialCache:
    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[float, Principal]] = {}
        self._loading: dict[bytes, asyncio.Task[Any]] = {}

    async def load(self, key: bytes, lookup: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``lookup()``'s result, and whether this caller ran it: the requests that miss
        the same credential at once (every in-flight one, each time its entry expires)
        share one lookup instead of each reading the store."""
        task = self._loading.get(key)
        ran = task is None
        if task is None:
            task = asyncio.ensure_future(lookup())
            self._loading[key] = task
            task.add_done_callback(lambda done: self._loaded(key, done))
        result: T = await asyncio.shield(task)
        return result, ran

    def _loaded(self, key: bytes, task: asyncio.Task[Any]) -> None:
        if self._loading.get(key) is task:
            del self._loading[key]
        if not task.cancelled():
            task.exception()  # retrieved here too: its waiters may all have left

    def get(self, key: bytes) -> Principal | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        return hit[1]

    def put(self, key: bytes, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        self._entries.clear()

    def subscribe(self, parts: Components) -> None:
        """Any announced change may change who a credential is: drop them all."""
        parts.on_invalidate(lambda _topic: self.clear())


def bearer_token(request: Request) -> str:
    header = first_header(request.scope, b"authorization")
    if not header:
        raise Unauthorized.missing()
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "The Authorization header must use the Bearer scheme.",
            error="invalid_request",
            reason="malformed",
        )
    return token


async def _from_key(pool: asyncpg.Pool, token: str, key: bytes) -> tuple[Principal, bool]:
    row = await repo.find_live_key(pool, key)
    if row is None:
        failed = await repo.why_key_failed(pool, key)
        raise Unauthorized(
            "The credential is invalid, expired or revoked.",
            reason=failed.reason if failed else "unknown",
            credential=f"key:{failed.id}" if failed else f"prefix:{display_prefix(token)}",
            app_id=failed.app_id if failed else None,
            org_id=failed.org_id if failed else None,
        )
    principal = key_principal(row)
    return principal, await _mark_used(pool, row, principal)


async def _mark_used(pool: asyncpg.Pool, row: repo.LiveKey, principal: Principal) -> bool:
    """Note the key's use; its first use ever is audited in the same transaction."""
    if not row.first_use:
        return await repo.mark_used(pool, row.id)
    async with unit_of_work(pool) as work:
        first_use = await repo.mark_used(work.conn, row.id)
        if first_use:
            await record(
                work.conn,
                principal,
                "credential.first_used",
                principal.credential,
                details={"kind": "api_key"},
            )
    return first_use


async def _from_token(pool: asyncpg.Pool, tokens: TokenService, token: str) -> Principal:
    try:
        claims = await tokens.verify(token)
    except InvalidToken as exc:
        raise Unauthorized(
            f"The access token is not valid: {exc}.", reason="invalid_token"
        ) from None
    granted = frozenset(str(claims.get("scope", "")).split())
    expires_at = claims.get("exp")
    return await subject_principal(
        pool,
        str(claims.get("sub", "")),
        granted,
        f"token:{claims['jti']}",
        expires_at if isinstance(expires_at, int) else None,
    )


class Admission(Protocol):
    """The rate limiter, as the bearer check sees it (it lives in a layer above)."""

    async def admit(self, principal: Principal) -> object: ...


class FailureThrottle(Protocol):
    """The per-address throttle on failed bearers (it lives in a layer above)."""

    async def check(self, ip: str | None) -> None: ...

    def failed(self, ip: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class Gate:
    """What the one auth step needs, found once per request."""

    pool: asyncpg.Pool
    tokens: TokenService
    credentials: CredentialCache
    failures: FailureThrottle
    limiter: Admission
    anonymous_reads: bool = True  # ENTREPOT_ANONYMOUS_READS: open datasets need no credential


async def authenticate(request: Request) -> Principal:
    return await _authenticate(request, components(request).get(Gate))


async def _authenticate(request: Request, gate: Gate) -> Principal:
    ip = _client_ip(request)
    try:
        principal = await _principal(request, gate, ip)
    except Unauthorized:
        gate.failures.failed(ip)
        raise
    return await _admitted(request, gate, principal)


async def _admitted(request: Request, gate: Gate, principal: Principal) -> Principal:
    """``principal``, admitted by the rate limiter, on the request's state (where the edge
    reads it for the logs, the metrics and the rate-limit headers)."""
    state = request.scope.setdefault("state", {})  # what ``request.state`` wraps
    state["principal"] = principal
    state["rate_limit"] = await gate.limiter.admit(principal)
    return principal


def _client_ip(request: Request) -> str | None:
    client = request.scope.get("client")
    return client[0] if client else None


async def recheck(request: Request, principal: Principal, scope: str) -> Principal:
    """Who the request's caller is now, for a stream that outlives its first check, able
    to do ``scope`` at most: 401 once its key is revoked or expired, its app or user
    disabled. An access token's own expiry ends nothing the stream had begun (a client
    could not tell it from a revocation). No rate limit is taken, no failure counted."""
    if principal.kind == "anonymous":
        return principal  # no credential: nothing to revoke (open datasets stay open)
    gate = components(request).get(Gate)
    if principal.credential.startswith("token:"):
        return await subject_principal(
            gate.pool,
            principal.subject,
            principal.scopes & {scope},
            principal.credential,
            principal.expires_at,
        )
    now = await _principal(request, gate, None)
    return replace(now, scopes=now.scopes & {scope})


async def authenticate_reader(request: Request) -> Principal:
    """The auth step of the routes that read datasets, records and feeds: as
    :func:`authenticate`, except that a request with no ``Authorization`` header at
    all is an anonymous caller (when the platform allows it), rate limited per client
    address, to whom only open datasets exist; any other dataset answers it the 401
    a missing credential gets (access/resolver.py). A header that is present is
    checked as always: a bad credential never falls back to anonymous."""
    gate = components(request).get(Gate)
    if not gate.anonymous_reads or first_header(request.scope, b"authorization") is not None:
        return await _authenticate(request, gate)
    return await _admitted(request, gate, anonymous(_client_ip(request)))


async def _principal(request: Request, gate: Gate, ip: str | None) -> Principal:
    try:
        token = bearer_token(request)
    except Unauthorized:
        await gate.failures.check(ip)
        raise
    is_jwt = looks_like_jwt(token)
    key = (
        hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest() if is_jwt else digest(token)
    )
    principal = gate.credentials.get(key)
    if principal is None:
        await gate.failures.check(ip)  # an address flooding bad bearers costs no lookup

        async def lookup() -> tuple[Principal, bool]:
            if is_jwt:
                return await _from_token(gate.pool, gate.tokens, token), False
            return await _from_key(gate.pool, token, key)

        (principal, first_use), ran = await gate.credentials.load(key, lookup)
        if first_use and ran:
            request.state.first_use = True
        gate.credentials.put(key, principal)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
CurrentReader = Annotated[Principal, Depends(authenticate_reader)]
