"""SQL for signing-key listings (the keys that sign and verify: auth.tokens, auth.repository).

Rows come back as :class:`SigningKey`, never as string-keyed records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from entrepot.store.types import Executor


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A signing key as listed: never its private material."""

    kid: str
    alg: str
    created_at: datetime
    retired_at: datetime | None
    publish_until: datetime | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> SigningKey:
        return cls(*row)


async def list_signing_keys(
    conn: Executor, *, after: tuple[datetime, str] | None, limit: int
) -> list[SigningKey]:
    """Newest first; never the private material."""
    rows = await conn.fetch(
        """
        SELECT kid, alg, created_at, retired_at, publish_until FROM signing_keys
        WHERE ($1::timestamptz IS NULL OR (created_at, kid) < ($1::timestamptz, $2::text))
        ORDER BY created_at DESC, kid DESC LIMIT $3
        """,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [SigningKey.of(r) for r in rows]
