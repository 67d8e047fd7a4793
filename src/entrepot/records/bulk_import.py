"""Bulk import: a streamed NDJSON or CSV body written in batches, one transaction.

Lines are parsed and validated exactly like single writes, then buffered
until ``batch_size`` records are ready and written with one statement. Only
the current batch and the unfinished line are ever in memory. Each batch runs
under a savepoint: if the database refuses one row (an index entry too
large, say), the batch is replayed row by row so the failure lands on its
line and, with ``on_error=skip``, the other rows still commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import asyncpg

from entrepot import jsonbody
from entrepot.access.policy import writable_records
from entrepot.access.resolver import AccessResolver
from entrepot.aio import stop_tasks
from entrepot.auditing import log as audit
from entrepot.changes import repository as changes_repo
from entrepot.datasets.registry import DatasetMeta, DatasetRegistry
from entrepot.ops.metrics import BULK_ROWS
from entrepot.principal import Principal
from entrepot.problems import BadRequest, Conflict, NotFound, PreconditionRequired, Unprocessable
from entrepot.records import bulk_repository as repo
from entrepot.records import csv_codec, validation
from entrepot.records.ids import new_id
from entrepot.records.lines import LineBatch, line_batches, without_terminator
from entrepot.store.bulk_slots import BulkSlots
from entrepot.store.types import Conn
from entrepot.streaming import bulk_job

Format = Literal["ndjson", "csv"]
Mode = Literal["insert", "upsert"]
OnError = Literal["abort", "skip"]
ErrorList = list[dict[str, str]]

MAX_REPORTED = 100
"""Errors listed in a report; also where an all-or-nothing import stops reading."""
_IMPORTED = BULK_ROWS.labels("import", "inserted")
_UPDATED = BULK_ROWS.labels("import", "updated")
_FAILED = BULK_ROWS.labels("import", "failed")


@dataclass(frozen=True, slots=True)
class ImportOptions:
    format: Format
    mode: Mode = "insert"
    on_error: OnError = "abort"


@dataclass
class ImportReport:
    inserted: int = 0
    updated: int = 0
    failed: int = 0
    stopped: bool = False
    """An all-or-nothing import gave up reading after :data:`MAX_REPORTED` failures."""
    reported: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def fail(self, line: int, errors: ErrorList) -> None:
        self.failed += 1
        self.reported.append({"line": line, "errors": errors})
        if len(self.reported) > 2 * MAX_REPORTED:  # keep the earliest lines, bounded
            self.reported = self.errors()

    def errors(self) -> list[dict[str, Any]]:
        """The failures on the earliest lines (batches can report out of order)."""
        return sorted(self.reported, key=lambda e: int(e["line"]))[:MAX_REPORTED]

    def body(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "failed": self.failed,
            "errors": self.errors(),
        }


class Item(NamedTuple):
    """One record read from the body: ready to write, or the reasons it is not (a tuple:
    one is made per record)."""

    line: int
    record_id: str = ""
    text: str = ""
    errors: ErrorList | None = None


class BulkImportService:
    def __init__(
        self,
        slots: BulkSlots,
        registry: DatasetRegistry,
        access: AccessResolver,
        *,
        batch_size: int,
        max_record_bytes: int,
        changed: Callable[[int], None] = lambda dataset_id: None,
    ) -> None:
        self.changed = changed  # wakes the dataset's feed readers after the commit
        self.slots = slots
        self.registry = registry
        self.access = access
        self.batch_size = max(1, batch_size)
        self.max_record_bytes = max_record_bytes

    async def run(
        self,
        principal: Principal,
        dataset: str,
        body: AsyncIterable[bytes],
        options: ImportOptions,
    ) -> ImportReport:
        """Import ``body``; the transaction opens only once a first batch is ready.

        The import counts against the caller's bulk share from the start, and takes
        a bulk connection only when it has something to write, so a client whose
        body has barely begun holds no database resource at all.
        """
        meta = writable_records(await self.access.for_dataset(principal, dataset)).meta
        if meta.require_if_match and options.mode == "upsert":
            # Replacing without the record's ETag is what the owner opted out of.
            raise PreconditionRequired(
                f"Writes to {meta.name!r} need If-Match; import with mode=insert, "
                "or replace records one by one."
            )
        lines = line_batches(body, self.max_record_bytes)
        reader = _ndjson_items if options.format == "ndjson" else _csv_items
        try:
            async with self.slots.admit(principal.share_key) as ticket, bulk_job("import"):
                items = reader(lines, meta, self.max_record_bytes)
                first = await self._read_ahead(items, options)
                async with ticket.connection() as conn, conn.transaction():
                    locked = await self.registry.lock_for_write(conn, meta)
                    if locked.require_if_match and options.mode == "upsert":
                        raise PreconditionRequired(f"Writes to {meta.name!r} need If-Match.")
                    if locked.schema_version != meta.schema_version:
                        raise Conflict(
                            f"The schema of {meta.name!r} changed while the import was being "
                            "read; nothing was imported. Send it again."
                        )
                    await changes_repo.start_tracking(conn)
                    report = await self._load(conn, locked, _chained(first, items), options)
                    if report.failed and options.on_error == "abort":
                        stopped = f" (reading stopped at {MAX_REPORTED})" if report.stopped else ""
                        raise Unprocessable(
                            f"{report.failed} record(s) failed{stopped}; nothing was imported.",
                            errors=report.errors(),
                            inserted=0,
                            updated=0,
                            failed=report.failed,
                        )
                    # One pending feed entry per record touched, in one statement.
                    await changes_repo.append_tracked(conn, locked.id, locked.table)
                    await audit.record(
                        conn,
                        principal,
                        "records.imported",
                        f"dataset:{locked.name}",
                        org_id=locked.org_id,
                        details={
                            "format": options.format,
                            "mode": options.mode,
                            "on_error": options.on_error,
                            "inserted": report.inserted,
                            "updated": report.updated,
                            "failed": report.failed,
                        },
                    )
                self.changed(locked.id)
                _IMPORTED.inc(report.inserted)
                _UPDATED.inc(report.updated)
                _FAILED.inc(report.failed)
                return report
        except asyncpg.UndefinedTableError:
            self.registry.forget(dataset)
            raise NotFound(
                f"Dataset {dataset!r} does not exist or is not visible to you."
            ) from None

    async def _read_ahead(
        self, items: AsyncIterator[list[Item]], options: ImportOptions
    ) -> list[Item]:
        """The body's first batch of records (or all of it, if shorter), read before any
        database work, to the end of the chunk that completes it; an all-or-nothing
        import also stops at its error limit."""
        first: list[Item] = []
        valid = failed = 0
        async for chunk in items:
            first.extend(chunk)
            failed += sum(1 for item in chunk if item.errors is not None)
            valid = len(first) - failed
            if valid >= self.batch_size or (options.on_error == "abort" and failed >= MAX_REPORTED):
                break
        return first

    async def _load(
        self,
        conn: Conn,
        meta: DatasetMeta,
        items: AsyncIterator[list[Item]],
        options: ImportOptions,
    ) -> ImportReport:
        report = ImportReport()
        writer = _BatchWriter(conn, meta, options.mode, self.batch_size, report)
        abort = options.on_error == "abort"
        try:
            async for chunk in items:
                for item in chunk:
                    if item.errors is not None:
                        report.fail(item.line, item.errors)
                    else:
                        await writer.add(item)
                    if abort and report.failed >= MAX_REPORTED:
                        report.stopped = True
                        break
                if report.stopped:
                    break
            await writer.flush()
            await writer.drain()
        finally:
            await writer.abandon()  # a failed or cancelled import leaves no write running
        return report


async def _chained(first: list[Item], rest: AsyncIterator[list[Item]]) -> AsyncIterator[list[Item]]:
    yield first
    async for chunk in rest:
        yield chunk


def _failed(line: int, message: str, path: str = "") -> Item:
    return Item(line, errors=[{"path": path, "message": message}])


def _checked(meta: DatasetMeta, line: int, data: Any) -> Item:
    """Apply the single-write rules: an object, its id, the schema."""
    if not isinstance(data, dict):
        return _failed(line, "not an object")
    try:
        record_id = validation.record_id(meta, data, None) if meta.primary_key else new_id()
        validation.validate(meta, data)
    except Unprocessable as exc:
        return Item(line, errors=exc.errors or [{"path": "", "message": exc.detail}])
    return Item(line, record_id, jsonbody.dumps_parsed(data))


async def _ndjson_items(
    batches: AsyncIterator[LineBatch], meta: DatasetMeta, limit: int
) -> AsyncIterator[list[Item]]:
    """The records of each chunk's lines, a list a chunk."""
    async for batch in batches:
        items: list[Item] = []
        for number, raw in enumerate(batch.raws, batch.first):
            if raw is None:
                items.append(_failed(number, f"the line is longer than {limit} bytes"))
                continue
            text = without_terminator(raw)
            if not text.strip():
                continue
            try:
                data = jsonbody.loads(text)
            except jsonbody.JsonBodyError as exc:
                items.append(_failed(number, exc.message, exc.path or ""))
                continue
            items.append(_checked(meta, number, data))
        if items:
            yield items


async def _csv_items(
    batches: AsyncIterator[LineBatch], meta: DatasetMeta, limit: int
) -> AsyncIterator[list[Item]]:
    """Records under a header row, a list a chunk; a header that cannot be used is a 400
    for the file."""
    header: list[str] | None = None
    async for records in _csv_records(batches, limit):
        items: list[Item] = []
        for record in records:
            if record.error is None and record.text == "":
                continue  # a blank line
            try:
                if record.error is not None:
                    raise csv_codec.CsvSyntaxError(record.error)
                cells = csv_codec.split_record(record.text)
            except csv_codec.CsvSyntaxError as exc:
                if header is None:
                    raise BadRequest(f"The CSV header cannot be read: {exc}") from None
                items.append(_failed(record.line, str(exc)))
                continue
            if header is None:
                header = csv_codec.check_header(cells, meta.schema)
                continue
            data, errors = csv_codec.coerce_row(header, cells, meta.schema)
            items.append(
                Item(record.line, errors=errors) if errors else _checked(meta, record.line, data)
            )
        if items:
            yield items


async def _csv_records(
    batches: AsyncIterator[LineBatch], limit: int
) -> AsyncIterator[list[csv_codec.CsvRecord]]:
    assembler = csv_codec.RecordAssembler(limit)
    async for batch in batches:
        lines = batch.lines()
        records = [record for line in lines if (record := assembler.feed(line)) is not None]
        if records:
            yield records
    last = assembler.finish()
    if last is not None:
        yield [last]


class _BatchWriter:
    """Buffers valid records and writes them a batch at a time, tallying the report.

    A batch is written while the next one is parsed and validated: PostgreSQL
    and this process then work at once (one statement at a time on the
    connection, in order). At most two batches are in memory.
    """

    def __init__(
        self, conn: Conn, meta: DatasetMeta, mode: Mode, size: int, report: ImportReport
    ) -> None:
        self.conn = conn
        self.meta = meta
        self.mode = mode
        self.size = size
        self.report = report
        self.lines: dict[str, int] = {}
        self.texts: list[str] = []
        self._writing: asyncio.Task[None] | None = None

    async def add(self, item: Item) -> None:
        if item.record_id in self.lines:
            if self.mode == "insert":
                self._exists(item.line)
                return
            # Upsert: a later line wins. One statement may not touch a row
            # twice, so the earlier version is written first.
            await self.flush()
        self.lines[item.record_id] = item.line
        self.texts.append(item.text)
        if len(self.texts) >= self.size:
            await self.flush()

    async def flush(self) -> None:
        """Start writing the buffered batch once the previous one is written."""
        if not self.texts:
            return
        ids, texts, lines = list(self.lines), self.texts, self.lines
        self.lines, self.texts = {}, []
        await self.drain()
        self._writing = asyncio.create_task(self._write_batch(ids, texts, lines))

    async def drain(self) -> None:
        """Wait for the batch being written; its failure surfaces here."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing

    async def abandon(self) -> None:
        writing, self._writing = self._writing, None
        if writing is None:
            return
        await stop_tasks([writing])
        if writing.done() and not writing.cancelled():
            writing.exception()  # already reported, or superseded by the error ending the import

    async def _write_batch(self, ids: list[str], texts: list[str], lines: dict[str, int]) -> None:
        try:
            try:
                async with self.conn.transaction():
                    await self._write(ids, texts, lines, optimistic=self.mode == "insert")
            except asyncpg.UniqueViolationError:  # some exist already: sort them out
                async with self.conn.transaction():
                    await self._write(ids, texts, lines)
        except (asyncpg.DataError, asyncpg.ProgramLimitExceededError):
            for record_id, text in zip(ids, texts, strict=True):
                try:
                    async with self.conn.transaction():
                        await self._write([record_id], [text], lines)
                except (asyncpg.DataError, asyncpg.ProgramLimitExceededError) as exc:
                    message = str(exc.args[0]) if exc.args else "the value cannot be stored"
                    self.report.fail(lines[record_id], [{"path": "", "message": message}])

    async def _write(
        self, ids: list[str], texts: list[str], lines: dict[str, int], optimistic: bool = False
    ) -> None:
        """``optimistic``: assume every record is new (the usual import), which spares
        PostgreSQL a speculative insertion per row; a clash raises and nothing is written."""
        if optimistic:
            await repo.insert_new_batch(self.conn, self.meta, ids, texts)
            self.report.inserted += len(ids)
            return
        if self.mode == "upsert":
            pending = dict(zip(ids, texts, strict=True))
            while pending:  # rows inserted concurrently since the statement began go again
                rows = await repo.upsert_batch(
                    self.conn, self.meta, list(pending), list(pending.values())
                )
                created = sum(1 for r in rows if r["created"])
                self.report.inserted += created
                self.report.updated += len(rows) - created
                for row in rows:
                    del pending[row["id"]]
            return
        inserted = await repo.insert_batch(self.conn, self.meta, ids, texts)
        self.report.inserted += len(inserted)
        for record_id in ids:
            if record_id not in inserted:
                self._exists(lines[record_id])
        await changes_repo.track_new(self.conn, [i for i in ids if i in inserted])

    def _exists(self, line: int) -> None:
        self.report.fail(
            line, [{"path": validation.key_pointer(self.meta), "message": "record already exists"}]
        )
