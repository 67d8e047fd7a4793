"""Export: every record's data, streamed from a server-side cursor.

The cursor runs in a read-only REPEATABLE READ transaction, so a long export
is one consistent snapshot, and rows are fetched a page at a time, so memory
stays flat whatever the dataset size. NDJSON lines are PostgreSQL's
``data::text`` with the keys in the schema's declared order (rewritten compact
unless the store's order already is that order, :mod:`entrepot.schema.key_order`);
CSV rows go through :mod:`csv_codec`. Parquet and Arrow IPC are typed columns
(:mod:`columnar`), written as they come (:mod:`columnar_files`): a Parquet row
group holds ``ROW_GROUP_ROWS`` rows or ``ROW_GROUP_BYTES`` of Arrow data,
whichever comes first, and is sent once written; an Arrow stream sends each page
of the cursor as one record batch. Memory stays flat for them too.

With ``envelope``, each NDJSON line is ``{"id", "version", "data"}`` instead
of the bare data, so a mirror (``entrepot sync``) gets the ids and versions
that the feed's changes refer to, whether or not the dataset has a primary key.
``csv_style="spreadsheet"`` writes CSV for spreadsheet software instead of
for exact round trips (see :mod:`csv_codec`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Literal

import asyncpg
import orjson
import pyarrow as pa
from asyncpg.cursor import Cursor

from entrepot import jsonbody
from entrepot.access.narrowing import ReadView, read_view
from entrepot.access.policy import readable_records
from entrepot.access.resolver import AccessResolver
from entrepot.changes import repository as changes_repo
from entrepot.changes.incarnation import incarnation_of
from entrepot.ops.metrics import BULK_ROWS
from entrepot.principal import Principal
from entrepot.problems import NotFound
from entrepot.records import bulk_repository as repo
from entrepot.records import columnar, csv_codec, query
from entrepot.records.columnar import Layout
from entrepot.records.columnar_files import ColumnarFormat, ColumnarWriter
from entrepot.store.bulk_slots import BulkSlots
from entrepot.store.types import Conn
from entrepot.store.work import plan_for_values
from entrepot.streaming import bulk_job, prepend

ExportFormat = Literal["ndjson", "csv", "parquet", "arrow"]
MEDIA_TYPES: dict[ExportFormat, str] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
}
EXTENSIONS: dict[ExportFormat, str] = {
    "ndjson": "ndjson",
    "csv": "csv",
    "parquet": "parquet",
    "arrow": "arrows",  # the IPC stream's registered extension (the file format's is .arrow)
}
FETCH_ROWS = 1_000
ROW_GROUP_ROWS = 65_536
ROW_GROUP_BYTES = 16 * 2**20
_EXPORTED = BULK_ROWS.labels("export", "exported")


@dataclass(frozen=True)
class Export:
    media_type: str
    filename: str
    chunks: AsyncIterator[bytes]
    seq: int
    incarnation: str


async def start(
    slots: BulkSlots,
    access: AccessResolver,
    principal: Principal,
    dataset: str,
    fmt: ExportFormat,
    envelope: bool = False,
    csv_style: csv_codec.CsvStyle = "exact",
) -> Export:
    """Open the export before any byte is sent, so a failure is still a problem document.

    The snapshot runs on a bulk connection (see :mod:`entrepot.store.bulk_slots`),
    counted against the caller's share, both held until the stream is closed.
    """
    view = read_view(readable_records(await access.for_dataset(principal, dataset)))
    meta = view.access.meta
    seq: list[int] = []
    chunks = _stream(slots, principal.share_key, view, fmt, seq, envelope, csv_style)
    try:
        first = await anext(chunks)
    except asyncpg.UndefinedTableError:
        access.registry.forget(dataset)
        raise NotFound(f"Dataset {dataset!r} does not exist or is not visible to you.") from None
    return Export(
        MEDIA_TYPES[fmt],
        f"{meta.name}.{EXTENSIONS[fmt]}",
        prepend(first, chunks),
        seq[0],
        incarnation_of(meta.id),
    )


async def _stream(
    slots: BulkSlots,
    caller: str | None,
    view: ReadView,
    fmt: ExportFormat,
    seq: list[int],
    envelope: bool,
    csv_style: csv_codec.CsvStyle,
) -> AsyncGenerator[bytes, None]:
    """Rows from one snapshot; ``seq`` receives the feed position that snapshot equals.

    The feed head is read first in the same REPEATABLE READ transaction: since
    seqs are assigned in commit order, the snapshot holds exactly the changes
    up to that seq, so a follower resumes the feed from it without loss.
    """
    meta = view.access.meta
    names = csv_codec.columns(view.schema)
    sql, args = query.build_export_sql(meta.table, meta.id, view.schema, view.row_conditions)
    async with slots.connection(caller) as conn, bulk_job("export"):
        # What has committed is numbered first; changes committing between this and
        # the snapshot are in the snapshot's records and get seqs above its head, so
        # a follower resuming from the head meets them again: applied by version,
        # they change nothing.
        await changes_repo.sequence(conn, meta.id)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await plan_for_values(conn)  # filters: a plan for their values
            seq.append(await changes_repo.head_seq(conn, meta.id))
            if fmt == "parquet" or fmt == "arrow":
                shape = await _surveyed_layout(conn, view)
                sql, args = query.build_columnar_sql(
                    meta.table,
                    meta.id,
                    view.schema,
                    view.row_conditions,
                    shape.selected(),
                    shape.undeclared_beyond(),
                )
                cursor = await repo.export_cursor(conn, sql, args)
                async for chunk in _columnar(cursor, fmt, shape, view, seq[0]):
                    yield chunk
                return
            cursor = await repo.export_cursor(conn, sql, args)
            yield csv_codec.render_header(names, csv_style).encode() if fmt == "csv" else b""
            while rows := await cursor.fetch(FETCH_ROWS):
                _EXPORTED.inc(len(rows))
                if fmt == "ndjson" and envelope:
                    yield b"".join(_envelope_line(view, row) for row in rows)
                elif fmt == "ndjson":
                    yield ("\n".join(view.project_text(row[0]) for row in rows) + "\n").encode()
                else:
                    yield "".join(
                        csv_codec.render_row(
                            names,
                            view.schema,
                            view.project(jsonbody.loads_trusted(row[0])),
                            csv_style,
                        )
                        for row in rows
                    ).encode()


async def _surveyed_layout(conn: Conn, view: ReadView) -> Layout:
    """The columns for ``view``, each typed column kept only if every value it would
    hold fits (asked of the same snapshot and rows as the export)."""
    meta = view.access.meta
    shape = columnar.layout(view.schema, whole_records=view.fields is None)
    checks = shape.survey_checks()
    if not checks:
        return shape
    sql, args = query.build_survey_sql(
        meta.table, meta.id, view.schema, view.row_conditions, checks
    )
    return shape.surveyed(await repo.survey(conn, sql, args))


async def _columnar(
    cursor: Cursor[asyncpg.Record],
    fmt: ColumnarFormat,
    shape: Layout,
    view: ReadView,
    seq: int,
) -> AsyncGenerator[bytes, None]:
    """The cursor's rows as a Parquet file or an Arrow IPC stream, a row group at a time."""
    meta = view.access.meta
    schema = shape.schema(
        {
            "entrepot.dataset": meta.name,
            "entrepot.seq": str(seq),
            "entrepot.incarnation": incarnation_of(meta.id),
            "entrepot.schema": jsonbody.dumps(view.schema.document),
        }
    )
    writer = ColumnarWriter(fmt, schema)
    yield writer.started()
    pending: list[pa.RecordBatch] = []
    rows = size = 0
    while page := await cursor.fetch(FETCH_ROWS):
        _EXPORTED.inc(len(page))
        batch = columnar.record_batch(shape, schema, page)
        if fmt == "arrow":  # a stream of batches: each page is one, sent as it comes
            yield writer.write_batch(batch)
            continue
        pending.append(batch)
        rows += batch.num_rows
        size += batch.nbytes
        if rows >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
            yield await writer.write(pa.Table.from_batches(pending, schema))
            pending.clear()
            rows = size = 0
    if pending:
        yield await writer.write(pa.Table.from_batches(pending, schema))
    yield await writer.finish()


def _envelope_line(view: ReadView, row: asyncpg.Record) -> bytes:
    return b"".join(
        (
            b'{"id":',
            orjson.dumps(row[1]),
            b',"version":',
            str(row[2]).encode(),
            b',"data":',
            view.project_text(row[0]).encode(),
            b"}\n",
        )
    )
