"""SQL for signing-key listings (issuing and verifying live in auth.tokens)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from entrepot.store.types import Executor


async def list_signing_keys(
    conn: Executor, *, after: tuple[datetime, str] | None, limit: int
) -> list[asyncpg.Record]:
    """Newest first; never the private material."""
    return await conn.fetch(
        """
        SELECT kid, alg, created_at, retired_at, publish_until FROM signing_keys
        WHERE ($1::timestamptz IS NULL OR (created_at, kid) < ($1::timestamptz, $2::text))
        ORDER BY created_at DESC, kid DESC LIMIT $3
        """,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
