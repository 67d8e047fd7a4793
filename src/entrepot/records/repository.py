"""SQL for records. Every statement addresses the dataset's own partition."""

from __future__ import annotations

from typing import Any

import asyncpg

from entrepot.catalog.registry import DatasetMeta
from entrepot.store.types import Conn, Executor

RETURNING = "RETURNING id, version, data::text, created_at, updated_at"


async def get(conn: Executor, meta: DatasetMeta, record_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT id, version, data::text, created_at, updated_at FROM {meta.table} "
        f"WHERE dataset_id = {meta.id} AND id = $1",
        record_id,
    )


async def get_for_update(conn: Conn, meta: DatasetMeta, record_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT version, data::text FROM {meta.table} "
        f"WHERE dataset_id = {meta.id} AND id = $1 FOR UPDATE",
        record_id,
    )


async def insert(conn: Conn, meta: DatasetMeta, record_id: str, data: str) -> asyncpg.Record | None:
    """Insert a new record; None when the id is taken."""
    return await conn.fetchrow(
        f"INSERT INTO {meta.table} (dataset_id, id, version, data) "
        f"VALUES ({meta.id}, $1, 1, $2::jsonb) ON CONFLICT DO NOTHING {RETURNING}",
        record_id,
        data,
    )


async def upsert(conn: Conn, meta: DatasetMeta, record_id: str, data: str) -> asyncpg.Record | None:
    """Create or replace; ``created`` tells which happened, ``prev`` what was replaced.

    ``old`` locks the current row and reads its latest committed state. A row
    inserted by another transaction after this statement's snapshot is not in
    ``old``, so the statement leaves it alone and returns None: run it again.
    """
    return await conn.fetchrow(
        f"WITH old AS (SELECT data::text AS data FROM {meta.table} "
        f"WHERE dataset_id = {meta.id} AND id = $1 FOR UPDATE) "
        f"INSERT INTO {meta.table} AS r (dataset_id, id, version, data) "
        f"VALUES ({meta.id}, $1, 1, $2::jsonb) "
        f"ON CONFLICT (dataset_id, id) DO UPDATE SET data = EXCLUDED.data, "
        f"version = r.version + 1, updated_at = now() WHERE EXISTS (SELECT 1 FROM old) "
        f"{RETURNING}, (xmax = 0) AS created, (SELECT data FROM old) AS prev",
        record_id,
        data,
    )


async def update(
    conn: Conn, meta: DatasetMeta, record_id: str, data: str, expected: int | None
) -> asyncpg.Record | None:
    """Replace an existing record, optionally only at version ``expected``."""
    guard = "" if expected is None else " AND version = $3"
    args: list[Any] = [record_id, data] + ([] if expected is None else [expected])
    return await conn.fetchrow(
        f"UPDATE {meta.table} SET data = $2::jsonb, version = version + 1, updated_at = now() "
        f"WHERE dataset_id = {meta.id} AND id = $1{guard} {RETURNING}",
        *args,
    )


async def delete(
    conn: Conn, meta: DatasetMeta, record_id: str, expected: int | None
) -> asyncpg.Record | None:
    """Delete the record; its last ``version`` and ``data``, or None if there was none."""
    guard = "" if expected is None else " AND version = $2"
    args: list[Any] = [record_id] + ([] if expected is None else [expected])
    return await conn.fetchrow(
        f"DELETE FROM {meta.table} WHERE dataset_id = {meta.id} AND id = $1{guard} "
        "RETURNING version, data::text",
        *args,
    )


async def current_version(conn: Conn, meta: DatasetMeta, record_id: str) -> int | None:
    version: int | None = await conn.fetchval(
        f"SELECT version FROM {meta.table} WHERE dataset_id = {meta.id} AND id = $1", record_id
    )
    return version
