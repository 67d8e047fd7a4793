"""SQL for credentials and the principals behind them.

Rows come back as the frozen dataclasses below, never as string-keyed records:
each is built from its row in one place, by position, from a statement that
names its columns in the same order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from entrepot.auth.keys import NewKey
from entrepot.principal import Role
from entrepot.store.types import Conn, Executor


@dataclass(frozen=True, slots=True)
class LiveKey:
    """An API key that may be used now, with its app's standing (all None for admin keys)."""

    id: uuid.UUID
    is_admin: bool
    scopes: list[str]
    app_id: uuid.UUID | None
    first_use: bool
    org_id: uuid.UUID | None
    app_scopes: list[str] | None
    plan: str | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> LiveKey:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class KeyFailure:
    """What was wrong with a refused key that exists (for the audit log)."""

    id: uuid.UUID
    prefix: str
    app_id: uuid.UUID | None
    org_id: uuid.UUID | None
    reason: str

    @classmethod
    def of(cls, row: asyncpg.Record) -> KeyFailure:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class LiveApp:
    """An enabled application, as an access token's subject."""

    id: uuid.UUID
    org_id: uuid.UUID
    scopes: list[str]
    client_id: str
    plan: str

    @classmethod
    def of(cls, row: asyncpg.Record) -> LiveApp:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class LiveUser:
    """An enabled user, as an access token's subject."""

    id: uuid.UUID
    is_platform_admin: bool

    @classmethod
    def of(cls, row: asyncpg.Record) -> LiveUser:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class OrgRole:
    org_id: uuid.UUID
    role: Role

    @classmethod
    def of(cls, row: asyncpg.Record) -> OrgRole:
        return cls(*row)


_LIVE_KEY = """
SELECT k.id, k.is_admin, k.scopes, k.app_id, k.first_used_at IS NULL AS first_use,
       a.org_id, a.scopes AS app_scopes, a.plan
FROM api_keys k LEFT JOIN apps a ON a.id = k.app_id
WHERE {which}
  AND k.revoked_at IS NULL
  AND (k.expires_at IS NULL OR k.expires_at > now())
  AND (k.app_id IS NULL OR a.disabled_at IS NULL)
"""
FIND_LIVE_KEY = _LIVE_KEY.format(which="k.digest = $1")
FIND_LIVE_KEY_BY_ID = _LIVE_KEY.format(which="k.id = $1")
_KEY_FAILURE = """
SELECT k.id, k.prefix, k.app_id, a.org_id,
       CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
            WHEN k.expires_at <= now() THEN 'expired'
            WHEN a.disabled_at IS NOT NULL THEN 'app_disabled'
            ELSE 'unknown' END AS reason
FROM api_keys k LEFT JOIN apps a ON a.id = k.app_id
WHERE {which}
"""


async def find_live_key(conn: Executor, digest: bytes) -> LiveKey | None:
    row = await conn.fetchrow(FIND_LIVE_KEY, digest)
    return None if row is None else LiveKey.of(row)


async def find_live_key_by_id(conn: Executor, key_id: uuid.UUID) -> LiveKey | None:
    """The key a stream ticket was issued through, if it may still be used."""
    row = await conn.fetchrow(FIND_LIVE_KEY_BY_ID, key_id)
    return None if row is None else LiveKey.of(row)


async def why_key_failed(conn: Executor, digest: bytes) -> KeyFailure | None:
    """For the audit log only: what was wrong with a refused key, if it exists."""
    row = await conn.fetchrow(_KEY_FAILURE.format(which="k.digest = $1"), digest)
    return None if row is None else KeyFailure.of(row)


async def why_key_id_failed(conn: Executor, key_id: uuid.UUID) -> KeyFailure | None:
    """For the audit log only: what was wrong with the key behind a refused ticket."""
    row = await conn.fetchrow(_KEY_FAILURE.format(which="k.id = $1"), key_id)
    return None if row is None else KeyFailure.of(row)


async def mark_used(conn: Executor, key_id: uuid.UUID) -> bool:
    """Record use at most once a minute per key; True on the key's first use ever."""
    first: bool | None = await conn.fetchval(
        """
        UPDATE api_keys SET last_used_at = now(), first_used_at = coalesce(first_used_at, now())
        WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
        RETURNING first_used_at = last_used_at
        """,
        key_id,
    )
    return bool(first)


async def find_app(conn: Executor, app_id: uuid.UUID) -> LiveApp | None:
    row = await conn.fetchrow(
        "SELECT id, org_id, scopes, client_id, plan FROM apps "
        "WHERE id = $1 AND disabled_at IS NULL",
        app_id,
    )
    return None if row is None else LiveApp.of(row)


async def find_user(conn: Executor, user_id: uuid.UUID) -> LiveUser | None:
    row = await conn.fetchrow(
        "SELECT id, is_platform_admin FROM users WHERE id = $1 AND disabled_at IS NULL", user_id
    )
    return None if row is None else LiveUser.of(row)


async def user_roles(conn: Executor, user_id: uuid.UUID) -> list[OrgRole]:
    rows = await conn.fetch("SELECT org_id, role FROM org_members WHERE user_id = $1", user_id)
    return [OrgRole.of(r) for r in rows]


async def insert_key(
    conn: Conn,
    key: NewKey,
    *,
    name: str,
    is_admin: bool = False,
    app_id: uuid.UUID | None = None,
    scopes: list[str] | None = None,
) -> uuid.UUID:
    key_id: uuid.UUID = await conn.fetchval(
        """
        INSERT INTO api_keys (name, prefix, digest, is_admin, app_id, scopes)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING id
        """,
        name,
        key.prefix,
        key.digest,
        is_admin,
        app_id,
        scopes or [],
    )
    return key_id


# --- token signing keys ------------------------------------------------------

SIGNING_KEYS_LOCK = 0x6A77_6B73  # "jwks"


@dataclass(frozen=True, slots=True)
class StoredSigningKey:
    """A signing key still published: its private PEM, its public JWK (JSON text), and
    whether it signs (it is not retired)."""

    kid: str
    private_pem: str
    jwk: str
    signing: bool

    @classmethod
    def of(cls, row: asyncpg.Record) -> StoredSigningKey:
        return cls(*row)


async def published_signing_keys(conn: Executor) -> list[StoredSigningKey]:
    """Every key that signs or still verifies, oldest first."""
    rows = await conn.fetch(
        "SELECT kid, private_pem, public_jwk::text AS jwk, retired_at IS NULL AS signing "
        "FROM signing_keys WHERE publish_until IS NULL OR publish_until > now() "
        "ORDER BY created_at"
    )
    return [StoredSigningKey.of(r) for r in rows]


async def lock_signing_keys(conn: Conn) -> None:
    """Serialise creating and rotating signing keys until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", SIGNING_KEYS_LOCK)


async def has_signing_key(conn: Conn) -> bool:
    """Whether an unretired key exists."""
    return bool(await conn.fetchval("SELECT 1 FROM signing_keys WHERE retired_at IS NULL"))


async def insert_signing_key(conn: Conn, kid: str, alg: str, private_pem: str, jwk: str) -> None:
    await conn.execute(
        "INSERT INTO signing_keys (kid, alg, private_pem, public_jwk) "
        "VALUES ($1, $2, $3, $4::jsonb)",
        kid,
        alg,
        private_pem,
        jwk,
    )


async def retire_signing_keys(conn: Conn, publish_seconds: int) -> list[str]:
    """Retire the signing key(s), published ``publish_seconds`` more; their kids."""
    rows = await conn.fetch(
        "UPDATE signing_keys SET retired_at = now(), "
        "publish_until = now() + make_interval(secs => $1) WHERE retired_at IS NULL "
        "RETURNING kid",
        publish_seconds,
    )
    return [r[0] for r in rows]
