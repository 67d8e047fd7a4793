"""Signed access tokens (JWT, EdDSA over Ed25519) and their signing keys.

Signing keys live in the database so every replica signs and verifies with
the same set. The newest unretired key signs; rotation retires it, and a
retired key stays published in the JWKS (and accepted) until every token it
signed has expired. Verification never fetches anything: unknown ``kid``
values trigger at most one reload of the key table per second. A request that
holds a connection reloads on it (``conn``), never on a second one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from entrepot.auth import repository as repo
from entrepot.components import Components
from entrepot.store.types import Conn, Executor
from entrepot.store.work import UnitOfWork

ALGORITHM = "EdDSA"
SIGNING_KEYS_TOPIC = "signing_keys"
# Every access token's header says ``typ: JWT`` (PyJWT's default); a token of another
# kind signed with the same keys (a stream ticket) names its own type, and verify()
# refuses it, whatever its audience: a ticket can never pass as an access token.
ACCESS_TOKEN_TYPE = "JWT"  # noqa: S105 - a token type, not a secret


RotationHook = Callable[[Any, str, list[str]], Awaitable[None]]


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    jti: str


@dataclass(frozen=True)
class _Key:
    kid: str
    private: Any
    public: Any
    jwk: dict[str, Any]
    signing: bool


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def _new_key_material() -> tuple[str, str, dict[str, Any]]:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    kid = uuid.uuid4().hex[:16]
    jwk = orjson.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    return kid, pem, jwk


class TokenService:
    def __init__(self, pool: asyncpg.Pool, *, issuer: str, audience: str, ttl: int) -> None:
        self.pool = pool
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._keys: dict[str, _Key] = {}
        self._loaded_at = 0.0

    def invalidate(self) -> None:
        self._loaded_at = 0.0

    def subscribe(self, parts: Components) -> None:
        parts.on_invalidate(lambda _topic: self.invalidate(), topics=[SIGNING_KEYS_TOPIC])

    async def _load(self, *, force: bool = False, conn: Executor | None = None) -> None:
        if not force and self._keys and time.monotonic() - self._loaded_at < 60:
            return
        keys = {}
        for row in await repo.published_signing_keys(conn or self.pool):
            private = serialization.load_pem_private_key(row.private_pem.encode(), None)
            keys[row.kid] = _Key(
                row.kid, private, private.public_key(), orjson.loads(row.jwk), row.signing
            )
        self._keys = keys
        self._loaded_at = time.monotonic()

    async def ensure_signing_key(self, conn: Conn | None = None) -> None:
        """Create the first signing key once, however many replicas race for it.

        On ``conn`` (a request's own connection) when given: inside its transaction
        if it has one, so the key commits with it."""
        if conn is None:
            async with self.pool.acquire() as own:
                await self.ensure_signing_key(own)
            return
        async with conn.transaction():
            await repo.lock_signing_keys(conn)
            if not await repo.has_signing_key(conn):
                await self._insert_key(conn)
        await self._load(force=True, conn=conn)

    async def _insert_key(self, conn: Conn) -> str:
        kid, pem, jwk = _new_key_material()
        await repo.insert_signing_key(conn, kid, ALGORITHM, pem, orjson.dumps(jwk).decode())
        return kid

    async def rotate(self, work: UnitOfWork, on_rotated: RotationHook | None = None) -> str:
        """Start signing with a new key; keep older ones verifiable until their tokens expire.

        ``on_rotated(conn, new_kid, retired_kids)`` runs inside the rotation's
        transaction (for the audit row). Once it commits, this replica reloads its
        keys on the same connection and every other replica is told to."""
        conn = work.conn
        await repo.lock_signing_keys(conn)
        retired = await repo.retire_signing_keys(conn, self.ttl + 60)
        kid = await self._insert_key(conn)
        if on_rotated is not None:
            await on_rotated(conn, kid, retired)
        work.announce(SIGNING_KEYS_TOPIC)
        work.after_commit(lambda: self._load(force=True, conn=conn))
        return kid

    async def _signing_key(self, conn: Conn | None = None) -> _Key:
        await self._load(conn=conn)
        signing = [k for k in self._keys.values() if k.signing]
        if not signing:
            await self.ensure_signing_key(conn)
            signing = [k for k in self._keys.values() if k.signing]
        return signing[-1]

    async def issue(
        self,
        *,
        subject: str,
        scopes: Iterable[str],
        client_id: str | None = None,
        conn: Conn | None = None,
    ) -> IssuedToken:
        """A signed token; ``conn``, the request's connection, serves a key cache miss."""
        now = int(time.time())
        jti = uuid.uuid4().hex
        scope = " ".join(sorted(set(scopes)))
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": jti,
            "scope": scope,
        }
        if client_id is not None:
            claims["client_id"] = client_id
        token = await self.sign(claims, typ=ACCESS_TOKEN_TYPE, conn=conn)
        return IssuedToken(token, self.ttl, scope, jti)

    async def sign(self, claims: dict[str, Any], *, typ: str, conn: Conn | None = None) -> str:
        """``claims`` signed by the current key, the header naming the token's ``typ``."""
        key = await self._signing_key(conn)
        headers = {"kid": key.kid, "typ": typ}
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers=headers)

    async def verify(self, token: str) -> dict[str, Any]:
        """An access token's claims; any other kind of token is refused."""
        return await self.verify_typed(
            token,
            typ=ACCESS_TOKEN_TYPE,
            audience=self.audience,
            require=["exp", "iat", "sub", "jti", "aud", "iss"],
        )

    async def verify_typed(
        self,
        token: str,
        *,
        typ: str,
        audience: str,
        require: list[str],
        verify_exp: bool = True,
    ) -> dict[str, Any]:
        """The claims of a token of type ``typ`` for ``audience``, signed by a published key.

        ``verify_exp=False`` leaves the expiry to the caller, who may want to know whose
        token expired (for the audit log) before refusing it."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise InvalidToken("unsupported token")
        if header.get("typ", ACCESS_TOKEN_TYPE) != typ:
            raise InvalidToken("not a token of this kind")
        await self._load()
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._loaded_at > 1:
            await self._load(force=True)
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.issuer,
                options={"require": require, "verify_exp": verify_exp},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        return claims

    async def jwks(self) -> dict[str, Any]:
        await self._load()
        return {"keys": [k.jwk for k in self._keys.values()]}
