"""Export: every record's data, streamed from a server-side cursor.

The cursor runs in a read-only REPEATABLE READ transaction, so a long export
is one consistent snapshot, and rows are fetched a page at a time, so memory
stays flat whatever the dataset size. NDJSON lines are PostgreSQL's own
``data::text`` (never parsed here); CSV rows go through :mod:`csv_codec`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Literal

import asyncpg

from entrepot import jsonbody
from entrepot.access.narrowing import ReadView, read_view
from entrepot.access.resolver import AccessResolver
from entrepot.auth.principal import Principal
from entrepot.policy import readable_records
from entrepot.problems import NotFound
from entrepot.records import bulk_repository as repo
from entrepot.records import csv_codec, query

ExportFormat = Literal["ndjson", "csv"]
MEDIA_TYPES: dict[ExportFormat, str] = {"ndjson": "application/x-ndjson", "csv": "text/csv"}
FETCH_ROWS = 1_000


@dataclass(frozen=True)
class Export:
    media_type: str
    filename: str
    chunks: AsyncIterator[bytes]


async def start(
    pool: asyncpg.Pool,
    access: AccessResolver,
    principal: Principal,
    dataset: str,
    fmt: ExportFormat,
) -> Export:
    """Open the export before any byte is sent, so a failure is still a problem document."""
    view = read_view(readable_records(await access.for_dataset(principal, dataset)))
    meta = view.access.meta
    chunks = _stream(pool, view, fmt)
    try:
        first = await anext(chunks)
    except asyncpg.UndefinedTableError:
        access.registry.forget(dataset)
        raise NotFound(f"Dataset {dataset!r} does not exist or is not visible to you.") from None
    return Export(MEDIA_TYPES[fmt], f"{meta.name}.{fmt}", _prepend(first, chunks))


async def _stream(
    pool: asyncpg.Pool, view: ReadView, fmt: ExportFormat
) -> AsyncGenerator[bytes, None]:
    meta = view.access.meta
    names = csv_codec.columns(view.schema)
    sql, args = query.build_export_sql(meta.table, meta.id, view.schema, view.row_conditions)
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        cursor = await repo.export_cursor(conn, sql, args)
        yield csv_codec.render_line(names).encode() if fmt == "csv" else b""
        while rows := await cursor.fetch(FETCH_ROWS):
            if fmt == "ndjson":
                yield ("\n".join(view.project_text(row[0]) for row in rows) + "\n").encode()
            else:
                yield "".join(
                    csv_codec.render_row(
                        names, view.schema, view.project(jsonbody.loads_trusted(row[0]))
                    )
                    for row in rows
                ).encode()


async def _prepend(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """``first`` then ``rest``, closing ``rest`` (and its connection) however we stop."""
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()
