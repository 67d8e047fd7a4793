"""SQL for organisations. Rows come back as :class:`Org`, never as string-keyed records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from entrepot.store.types import Conn, Executor

COLUMNS = "id, name, title, created_at"


@dataclass(frozen=True, slots=True)
class Org:
    id: uuid.UUID
    name: str
    title: str
    created_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> Org:
        return cls(row[0], row[1], row[2], row[3])


async def insert_org(conn: Conn, name: str, title: str) -> Org:
    row = await conn.fetchrow(
        f"INSERT INTO orgs (name, title) VALUES ($1, $2) RETURNING {COLUMNS}", name, title
    )
    assert row is not None
    return Org.of(row)


async def get_org(conn: Executor, name: str) -> Org | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM orgs WHERE name = $1", name)
    return None if row is None else Org.of(row)


async def list_orgs(
    conn: Executor, *, only: list[uuid.UUID] | None, after: str | None, limit: int
) -> list[Org]:
    rows = await conn.fetch(
        f"""
        SELECT {COLUMNS} FROM orgs
        WHERE ($1::uuid[] IS NULL OR id = ANY($1)) AND ($2::text IS NULL OR name > $2)
        ORDER BY name LIMIT $3
        """,
        only,
        after,
        limit,
    )
    return [Org.of(r) for r in rows]
