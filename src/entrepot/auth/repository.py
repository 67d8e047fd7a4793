"""SQL for credentials."""

from __future__ import annotations

import uuid

import asyncpg

from entrepot.auth.keys import NewKey
from entrepot.store.types import Conn, Executor

FIND_LIVE_KEY = """
SELECT id, org_id, is_admin, scopes
FROM api_keys
WHERE digest = $1
  AND revoked_at IS NULL
  AND (expires_at IS NULL OR expires_at > now())
"""


async def find_live_key(conn: Executor, digest: bytes) -> asyncpg.Record | None:
    return await conn.fetchrow(FIND_LIVE_KEY, digest)


async def touch_key(conn: Executor, key_id: uuid.UUID) -> None:
    """Record use at most once a minute per key, to keep reads read-only."""
    await conn.execute(
        """
        UPDATE api_keys SET last_used_at = now()
        WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
        """,
        key_id,
    )


async def insert_key(
    conn: Conn,
    key: NewKey,
    *,
    name: str,
    is_admin: bool = False,
    org_id: uuid.UUID | None = None,
    scopes: list[str] | None = None,
) -> uuid.UUID:
    key_id: uuid.UUID = await conn.fetchval(
        """
        INSERT INTO api_keys (name, prefix, digest, is_admin, org_id, scopes)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING id
        """,
        name,
        key.prefix,
        key.digest,
        is_admin,
        org_id,
        scopes or [],
    )
    return key_id
