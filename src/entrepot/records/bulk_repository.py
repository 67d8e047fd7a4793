"""SQL for bulk import and export.

A batch is one statement: the ids and documents travel as two arrays and
``unnest`` turns them into rows, so a thousand records cost one round trip.
``RETURNING`` says what happened to each row without a second query.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.cursor import Cursor

from entrepot.changes.repository import TOUCHED
from entrepot.datasets.registry import DatasetMeta
from entrepot.store.types import Conn

_ROWS = (
    "SELECT {dataset}, r.id, 1, r.data::jsonb FROM unnest($1::text[], $2::text[]) AS r(id, data)"
)


async def insert_batch(conn: Conn, meta: DatasetMeta, ids: list[str], data: list[str]) -> set[str]:
    """Insert new records; the ids that were inserted (the others already existed)."""
    rows = await conn.fetch(
        f"INSERT INTO {meta.table} (dataset_id, id, version, data) "
        f"{_ROWS.format(dataset=meta.id)} ON CONFLICT DO NOTHING RETURNING id",
        ids,
        data,
    )
    return {row[0] for row in rows}


async def insert_new_batch(conn: Conn, meta: DatasetMeta, ids: list[str], data: list[str]) -> None:
    """Insert records that must all be new, and note them for the change feed, in one
    statement; raises ``UniqueViolationError`` (writing nothing) if one exists."""
    await conn.execute(
        f"WITH inserted AS (INSERT INTO {meta.table} (dataset_id, id, version, data) "
        f"{_ROWS.format(dataset=meta.id)} RETURNING id) "
        f"INSERT INTO {TOUCHED} (id) SELECT id FROM inserted",
        ids,
        data,
    )


async def upsert_batch(
    conn: Conn, meta: DatasetMeta, ids: list[str], data: list[str]
) -> list[asyncpg.Record]:
    """Insert or replace records (ids unique within the batch): ``(id, version, created)``,
    noting each for the change feed with the state it had before this transaction.

    ``old`` locks the existing rows first and reads their latest committed
    state; a row that another transaction inserted after this statement's
    snapshot is in no ``old`` row, so it is left alone (its id is missing from
    the result) and the caller writes it again with a fresh snapshot. ``xmax
    = 0`` holds only for a row this statement inserted.
    """
    return await conn.fetch(
        f"WITH old AS (SELECT id, data FROM {meta.table} "
        f"WHERE dataset_id = {meta.id} AND id = ANY($1::text[]) FOR UPDATE), "
        f"up AS (INSERT INTO {meta.table} AS t (dataset_id, id, version, data) "
        f"{_ROWS.format(dataset=meta.id)} "
        f"ON CONFLICT (dataset_id, id) DO UPDATE SET data = EXCLUDED.data, "
        f"version = t.version + 1, updated_at = now() "
        f"WHERE EXISTS (SELECT 1 FROM old WHERE old.id = t.id) "
        f"RETURNING t.id, t.version, (xmax = 0) AS created), "
        f"noted AS (INSERT INTO {TOUCHED} (id, prev) "
        f"SELECT up.id, old.data FROM up LEFT JOIN old ON old.id = up.id "
        f"ON CONFLICT DO NOTHING) "
        f"SELECT id, version, created FROM up",
        ids,
        data,
    )


async def export_cursor(conn: Conn, sql: str, args: list[Any]) -> Cursor[asyncpg.Record]:
    """Stream the rows of ``query.build_export_sql``; call inside a transaction."""
    return await conn.cursor(sql, *args)


async def survey(conn: Conn, sql: str, args: list[Any]) -> list[bool]:
    """The answers of ``query.build_survey_sql``, in the order of its checks; doubles
    printed in their shortest exact text, whatever the session said before."""
    await conn.execute("SET LOCAL extra_float_digits = 1")
    row = await conn.fetchrow(sql, *args)
    return [bool(answer) for answer in row] if row is not None else []
