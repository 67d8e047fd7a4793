"""SQL for credentials and the principals behind them."""

from __future__ import annotations

import uuid

import asyncpg

from entrepot.auth.keys import NewKey
from entrepot.store.types import Conn, Executor

FIND_LIVE_KEY = """
SELECT k.id, k.is_admin, k.scopes, k.app_id, k.first_used_at IS NULL AS first_use,
       a.org_id, a.scopes AS app_scopes, a.plan
FROM api_keys k LEFT JOIN apps a ON a.id = k.app_id
WHERE k.digest = $1
  AND k.revoked_at IS NULL
  AND (k.expires_at IS NULL OR k.expires_at > now())
  AND (k.app_id IS NULL OR a.disabled_at IS NULL)
"""


async def find_live_key(conn: Executor, digest: bytes) -> asyncpg.Record | None:
    return await conn.fetchrow(FIND_LIVE_KEY, digest)


async def why_key_failed(conn: Executor, digest: bytes) -> asyncpg.Record | None:
    """For the audit log only: what was wrong with a refused key, if it exists."""
    return await conn.fetchrow(
        """
        SELECT k.id, k.prefix, k.app_id, a.org_id,
               CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
                    WHEN k.expires_at <= now() THEN 'expired'
                    WHEN a.disabled_at IS NOT NULL THEN 'app_disabled'
                    ELSE 'unknown' END AS reason
        FROM api_keys k LEFT JOIN apps a ON a.id = k.app_id
        WHERE k.digest = $1
        """,
        digest,
    )


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


async def find_app(conn: Executor, app_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, org_id, scopes, client_id, plan FROM apps "
        "WHERE id = $1 AND disabled_at IS NULL",
        app_id,
    )


async def find_user(conn: Executor, user_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, is_platform_admin FROM users WHERE id = $1 AND disabled_at IS NULL", user_id
    )


async def user_roles(conn: Executor, user_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT org_id, role FROM org_members WHERE user_id = $1", user_id)


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
