"""The bearer-token check every /v1 endpoint depends on.

Live credentials are cached per process for at most
``credential_cache_seconds`` (default 1 s), the bound on how long a revoked
key can keep working on a replica. Unknown tokens are never cached.
"""

from __future__ import annotations

import time
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from entrepot.auth.keys import digest
from entrepot.auth.principal import Principal
from entrepot.auth.repository import find_live_key
from entrepot.problems import Unauthorized


class CredentialCache:
    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[float, Principal]] = {}

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


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized(
            "Send an API key or access token as 'Authorization: Bearer <token>'.",
            error="invalid_request",
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "The Authorization header must use the Bearer scheme.", error="invalid_request"
        )
    return token


async def authenticate(request: Request) -> Principal:
    token = bearer_token(request)
    key = digest(token)
    state = request.app.state
    cache: CredentialCache = state.credentials
    principal = cache.get(key)
    if principal is None:
        pool: asyncpg.Pool = state.pool
        row = await find_live_key(pool, key)
        if row is None:
            raise Unauthorized("The credential is invalid, expired or revoked.")
        principal = Principal(
            key_id=row["id"],
            org_id=row["org_id"],
            is_admin=row["is_admin"],
            scopes=frozenset(row["scopes"]),
        )
        cache.put(key, principal)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
