"""Export: every record's data, streamed from a server-side cursor.

The cursor runs in a read-only REPEATABLE READ transaction, so a long export
is one consistent snapshot, and rows are fetched a page at a time, so memory
stays flat whatever the dataset size. NDJSON lines are PostgreSQL's
``data::text`` with the keys in the schema's declared order (rewritten compact
unless the store's order already is that order, :mod:`entrepot.schema.key_order`);
CSV rows go through :mod:`csv_codec`.

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
from entrepot.records import csv_codec, query
from entrepot.store.bulk_slots import BulkSlots
from entrepot.store.work import plan_for_values
from entrepot.streaming import bulk_job, prepend

ExportFormat = Literal["ndjson", "csv"]
MEDIA_TYPES: dict[ExportFormat, str] = {"ndjson": "application/x-ndjson", "csv": "text/csv"}
FETCH_ROWS = 1_000
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
        f"{meta.name}.{fmt}",
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
