"""Record use cases on the request's unit of work: validation, preconditions, the feed.

Services return what happened (:class:`Found`, :class:`Page`, :class:`Written`);
the edge turns it into HTTP. Writes run in the edge's transaction and register
their feed entry as its last statement.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import asyncpg

from entrepot import jsonbody
from entrepot.access.narrowing import read_view
from entrepot.access.policy import readable_records, writable_records
from entrepot.access.resolver import AccessResolver, DatasetAccess
from entrepot.datasets.registry import DatasetMeta, DatasetRegistry
from entrepot.principal import Principal
from entrepot.problems import (
    BadRequest,
    Conflict,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Problem,
    ServiceUnavailable,
    Unprocessable,
)
from entrepot.records import query, render, validation
from entrepot.records import repository as repo
from entrepot.records.ids import check_path_id, new_id
from entrepot.records.mergepatch import merge_patch
from entrepot.records.preconditions import ETagSet
from entrepot.schema.record_schema import RecordSchema
from entrepot.store.types import Conn
from entrepot.store.work import Reads, UnitOfWork

T = TypeVar("T")


class Found(NamedTuple):
    """One record as the caller may see it, with the validator of that view."""

    record_id: str
    version: int
    data: str
    created_at: datetime
    updated_at: datetime
    etag: str

    def body(self) -> bytes:
        return render.envelope(
            self.record_id, self.version, self.data, self.created_at, self.updated_at
        )


@dataclass(frozen=True)
class Page:
    items: list[bytes]
    next_cursor: str | None

    def body(self) -> bytes:
        return render.page(self.items, self.next_cursor)


@dataclass(frozen=True)
class Written:
    """A committed-to-be write: the record after it (None when deleted), and whether
    it created the record."""

    dataset: str
    record: Found | None
    created: bool = False


@dataclass(frozen=True)
class ListLimits:
    """What one list request may cost: a scan of at most ``scan_rows`` records (by
    PostgreSQL's estimate) when no index serves it, and ``timeout`` seconds in all."""

    scan_rows: int = 100_000
    timeout: float = 5.0


def _dropped(registry: DatasetRegistry, dataset: str) -> NotFound:
    """The dataset's table went away since the catalog cache read it (another replica)."""
    registry.forget(dataset)
    return NotFound(f"Dataset {dataset!r} does not exist or is not visible to you.")


class RecordService:
    def __init__(
        self,
        registry: DatasetRegistry,
        access: AccessResolver,
        limits: ListLimits | None = None,
        changed: Callable[[int], None] = lambda dataset_id: None,
    ) -> None:
        self.registry = registry
        self.access = access
        self.limits = limits or ListLimits()
        # Wakes the dataset's feed readers once a change has committed.
        self.changed = changed

    # --- reads ------------------------------------------------------------

    async def get(self, reads: Reads, principal: Principal, dataset: str, record_id: str) -> Found:
        check_path_id(record_id)
        access = readable_records(await self.access.for_dataset(principal, dataset, reads.conn))
        meta = access.meta
        view = read_view(access) if access.narrowed else None
        try:
            if view is not None:
                sql, args = query.build_get_sql(
                    meta.table, meta.id, record_id, view.schema, view.row_conditions
                )
                row = await reads.conn.fetchrow(sql, *args)
            else:
                row = await repo.get(reads.conn, meta, record_id)
        except asyncpg.UndefinedTableError:
            raise _dropped(self.registry, dataset) from None
        if row is None:
            raise NotFound(f"Record {record_id!r} does not exist in {dataset!r}.")
        data = view.project_text(row[2]) if view is not None else meta.schema.key_order.text(row[2])
        if view is not None and view.fields is not None:
            # What the grant cannot see must not move its validator: a change to
            # hidden fields only leaves the tag (and the feed) as they were.
            tag = render.view_etag(row[0], data)
        else:
            tag = render.etag(row[1])
        return Found(row[0], row[1], data, row[3], row[4], tag)

    async def list(
        self, reads: Reads, principal: Principal, dataset: str, params: Iterable[tuple[str, str]]
    ) -> Page:
        access = readable_records(await self.access.for_dataset(principal, dataset, reads.conn))
        meta = access.meta
        view = read_view(access)
        parsed = query.parse(params, view.schema)
        scanned = query.scan_fields(parsed, view.schema, meta.indexes)
        if scanned and meta.estimated_rows > self.limits.scan_rows:
            raise _needs_index(meta, scanned, view.schema)
        sql, args = query.build_sql(meta.table, meta.id, parsed, view.schema, view.row_conditions)
        # How selective a filter is depends on its values: a filtered list gets a plan of
        # its own; an unfiltered page (id order, or an indexed sort) the cached one.
        filtered = bool(parsed.conditions or view.row_conditions)
        try:
            async with reads.planned_for_values() if filtered else nullcontext():
                rows = await reads.conn.fetch(sql, *args, timeout=self.limits.timeout)
        except asyncpg.UndefinedTableError:
            raise _dropped(self.registry, dataset) from None
        except asyncpg.DataError as exc:
            raise BadRequest(f"The filter cannot be applied: {exc.args[0]}") from None
        except TimeoutError:  # asyncpg has cancelled the query on the server
            if scanned:
                raise _needs_index(meta, scanned, view.schema) from None
            raise ServiceUnavailable(
                f"The list took longer than {self.limits.timeout:g} s; narrow it or retry.",
                headers={"Retry-After": "5"},
            ) from None
        more = len(rows) > parsed.limit
        rows = rows[: parsed.limit]
        items = [
            render.envelope(r[0], r[1], view.project_text(r[2], parsed.fields), r[3], r[4])
            for r in rows
        ]
        cursor = query.next_cursor(parsed, rows[-1]) if more and rows else None
        return Page(items, cursor)

    # --- writes -----------------------------------------------------------

    async def create(
        self, work: UnitOfWork, principal: Principal, dataset: str, body: bytes
    ) -> Written:
        meta = self._writable_meta(await self._access(work, principal, dataset))
        data = _parse_record(body)
        text = jsonbody.dumps_parsed(data)

        def insert(meta: DatasetMeta) -> repo.Write:
            record_id = validation.record_id(meta, data, None) if meta.primary_key else new_id()
            validation.validate(meta, data)
            return repo.Insert(record_id, text)

        stored, meta, write = await self._write(work, principal, meta, insert)
        if stored.record is None:
            raise Conflict(
                f"A record with id {write.record_id!r} already exists; use PUT to replace it."
            )
        return self._written(work, meta, stored.record)

    async def replace(
        self,
        work: UnitOfWork,
        principal: Principal,
        dataset: str,
        record_id: str,
        body: bytes,
        if_match: ETagSet | None,
        if_none_match: ETagSet | None,
    ) -> Written:
        check_path_id(record_id)
        meta = self._writable_meta(await self._access(work, principal, dataset))
        data = _parse_record(body)
        text = jsonbody.dumps_parsed(data)

        def valid(meta: DatasetMeta) -> None:
            validation.record_id(meta, data, record_id)
            validation.validate(meta, data)

        if if_none_match is not None and if_none_match.any:

            def insert(meta: DatasetMeta) -> repo.Write:
                valid(meta)
                return repo.Insert(record_id, text)

            stored, meta, _ = await self._write(work, principal, meta, insert)
            if stored.record is None:
                raise PreconditionFailed("The record exists and If-None-Match is '*'.")
            return self._written(work, meta, stored.record)
        if if_match is None:

            def upsert(meta: DatasetMeta) -> repo.Write:
                _require_if_match(meta)
                valid(meta)
                return repo.Upsert(record_id, text)

            stored, meta, _ = await self._write(work, principal, meta, upsert)
            while stored.record is None:  # created by another writer since the statement began
                stored, meta, _ = await self._write(work, principal, meta, upsert)
            return self._written(work, meta, stored.record)
        meta = await self._locked(work, meta)
        current = await _check_if_match(work.conn, meta, record_id, if_match)

        def update(meta: DatasetMeta) -> repo.Write:
            valid(meta)
            return repo.Update(record_id, text, current[1], "replaced")

        stored, meta, _ = await self._write(work, principal, meta, update)
        assert stored.record is not None  # the row is locked since _check_if_match
        return self._written(work, meta, stored.record)

    async def patch(
        self,
        work: UnitOfWork,
        principal: Principal,
        dataset: str,
        record_id: str,
        body: bytes,
        if_match: ETagSet | None,
    ) -> Written:
        check_path_id(record_id)
        meta = await self._locked(
            work, self._writable_meta(await self._access(work, principal, dataset))
        )
        patch_doc = _parse_record(body)
        if if_match is None:
            _require_if_match(meta)
        current = await _stored(
            self.registry, dataset, repo.get_for_update(work.conn, meta, record_id)
        )
        if current is None:
            if if_match is not None:
                raise PreconditionFailed(f"Record {record_id!r} does not exist.")
            raise NotFound(f"Record {record_id!r} does not exist in {meta.name!r}.")
        if if_match is not None and not if_match.matches_strong(current[0]):
            raise PreconditionFailed(_stale(current[0]), headers={"ETag": render.etag(current[0])})
        data = merge_patch(jsonbody.loads_trusted(current[1]), patch_doc)

        def update(meta: DatasetMeta) -> repo.Write:
            validation.record_id(meta, data, record_id)
            validation.validate(meta, data)
            return repo.Update(record_id, jsonbody.dumps_parsed(data), current[1], "patched")

        stored, meta, _ = await self._write(work, principal, meta, update)
        assert stored.record is not None  # locked by get_for_update
        return self._written(work, meta, stored.record)

    async def delete(
        self,
        work: UnitOfWork,
        principal: Principal,
        dataset: str,
        record_id: str,
        if_match: ETagSet | None,
    ) -> Written:
        check_path_id(record_id)
        meta = self._writable_meta(await self._access(work, principal, dataset))
        if if_match is not None:
            meta = await self._locked(work, meta)
            await _check_if_match(work.conn, meta, record_id, if_match)

        def delete(meta: DatasetMeta) -> repo.Write:
            if if_match is None:
                _require_if_match(meta)
            return repo.Delete(record_id)

        stored, meta, _ = await self._write(work, principal, meta, delete)
        if stored.record is None:
            raise NotFound(f"Record {record_id!r} does not exist in {meta.name!r}.")
        self._woken(work, meta)
        return Written(meta.name, None)

    async def _write(
        self,
        work: UnitOfWork,
        principal: Principal,
        meta: DatasetMeta,
        make: Callable[[DatasetMeta], repo.Write],
    ) -> tuple[repo.Stored, DatasetMeta, repo.Write]:
        """Validate with ``make`` against the cached metadata and run the write's one
        statement (repo.write); if the dataset's schema moved since, or the body was
        refused, decide again against the metadata read under the dataset's lock, so
        what is accepted or refused is always judged by the current schema."""
        try:
            write = make(meta)
        except Problem:
            fresh = await self._locked(work, meta)
            if fresh is meta:
                raise
            meta, write = fresh, make(fresh)
        stored = await _stored(
            self.registry, meta.name, repo.write(work.conn, meta, write, principal)
        )
        if stored.seen is None:
            self.registry.forget(meta.name)
            raise NotFound(f"Dataset {meta.name!r} does not exist or is not visible to you.")
        if not stored.current_for(meta):
            meta = await self._locked(work, meta)  # held from here on: stays current
            write = make(meta)
            stored = await _stored(
                self.registry, meta.name, repo.write(work.conn, meta, write, principal)
            )
        return stored, meta, write

    def _written(self, work: UnitOfWork, meta: DatasetMeta, row: repo.StoredRecord) -> Written:
        self._woken(work, meta)
        assert row.data is not None
        data = meta.schema.key_order.text(row.data)
        found = Found(
            row.id, row.version, data, row.created_at, row.updated_at, render.etag(row.version)
        )
        return Written(meta.name, found, row.created)

    def _woken(self, work: UnitOfWork, meta: DatasetMeta) -> None:
        """The write's change is in its statement; its readers are woken after the commit."""
        work.after_commit(lambda: self.changed(meta.id))

    async def _access(self, work: UnitOfWork, principal: Principal, dataset: str) -> DatasetAccess:
        return await self.access.for_dataset(principal, dataset, work.conn)

    @staticmethod
    def _writable_meta(access: DatasetAccess) -> DatasetMeta:
        return writable_records(access).meta

    async def _locked(self, work: UnitOfWork, meta: DatasetMeta) -> DatasetMeta:
        """The dataset locked against schema changes for the rest of the transaction,
        with its current metadata (for writes that read the record before writing).
        Begins the unit's transaction: from here on the write is more than one statement."""
        await work.begin_transaction()
        return await _stored(
            self.registry, meta.name, self.registry.lock_for_write(work.conn, meta)
        )


async def _stored(registry: DatasetRegistry, dataset: str, statement: Awaitable[T]) -> T:
    """Await a write's statement; what the store refuses becomes the caller's problem."""
    try:
        return await statement
    except asyncpg.UndefinedTableError:
        raise _dropped(registry, dataset) from None
    except (asyncpg.DataError, asyncpg.ProgramLimitExceededError) as exc:
        raise Unprocessable(
            "The record cannot be stored.",
            errors=[{"path": "", "message": str(exc.args[0]) if exc.args else "invalid value"}],
        ) from None


def _needs_index(meta: DatasetMeta, fields: list[str], schema: RecordSchema) -> BadRequest:
    """The list would read every record: say which fields to index, or filter on."""
    indexed = [f for f in meta.indexes if schema.has_property(f)]
    names = ", ".join(repr(f) for f in fields)
    also = f" or also filter on an indexed field ({', '.join(indexed)})" if indexed else ""
    return BadRequest(
        f"This list would read every one of the about {meta.estimated_rows:,} records of "
        f"{meta.name!r}: {names} {'is' if len(fields) == 1 else 'are'} not indexed (or not "
        f"compared in a way an index serves). Ask the dataset's owner to declare an index "
        f'(PATCH /v1/datasets/{meta.name} with the field in "indexes"){also}.',
        errors=[{"path": f"query:{f}", "message": "not served by an index"} for f in fields],
    )


def _parse_record(body: bytes) -> dict[str, Any]:
    data = jsonbody.parse_body(body)
    if not isinstance(data, dict):
        raise Unprocessable(
            "A record must be a JSON object.", errors=[{"path": "", "message": "not an object"}]
        )
    return data


def _require_if_match(meta: DatasetMeta) -> None:
    if meta.require_if_match:
        raise PreconditionRequired(
            f"Writes to {meta.name!r} must carry If-Match with the record's ETag."
        )


def _stale(version: int) -> str:
    return f"The record is at version {version}; If-Match does not match."


async def _check_if_match(
    conn: Conn, meta: DatasetMeta, record_id: str, if_match: ETagSet
) -> asyncpg.Record:
    """The record's (version, data), locked, if its ETag is one of ``if_match``."""
    current = await repo.get_for_update(conn, meta, record_id)
    if current is None:
        raise PreconditionFailed(f"Record {record_id!r} does not exist.")
    if not if_match.matches_strong(current[0]):
        raise PreconditionFailed(_stale(current[0]), headers={"ETag": render.etag(current[0])})
    return current
