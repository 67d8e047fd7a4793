"""SQL for organisations."""

from __future__ import annotations

import uuid

import asyncpg

from entrepot.store.types import Conn, Executor


async def insert_org(conn: Conn, name: str, title: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO orgs (name, title) VALUES ($1, $2) RETURNING id, name, title, created_at",
        name,
        title,
    )
    assert row is not None
    return row


async def get_org(conn: Executor, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, name, title, created_at FROM orgs WHERE name = $1", name)


async def list_orgs(
    conn: Executor, *, only: list[uuid.UUID] | None, after: str | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT id, name, title, created_at FROM orgs
        WHERE ($1::uuid[] IS NULL OR id = ANY($1)) AND ($2::text IS NULL OR name > $2)
        ORDER BY name LIMIT $3
        """,
        only,
        after,
        limit,
    )
