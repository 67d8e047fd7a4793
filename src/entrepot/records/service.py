"""Record use cases: validation, preconditions, idempotency, one transaction each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import asyncpg

from entrepot import jsonbody
from entrepot.access.narrowing import read_view
from entrepot.access.resolver import AccessResolver
from entrepot.audit.log import record
from entrepot.auth.principal import Principal
from entrepot.catalog.record_schema import RecordSchema
from entrepot.catalog.registry import DatasetMeta, DatasetRegistry
from entrepot.changes import repository as changes_repo
from entrepot.policy import readable_records, writable_records
from entrepot.problems import (
    BadRequest,
    Conflict,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ServiceUnavailable,
    Unprocessable,
)
from entrepot.records import idempotency, query, render, validation
from entrepot.records import repository as repo
from entrepot.records.ids import new_id
from entrepot.records.mergepatch import merge_patch
from entrepot.records.preconditions import ETagSet
from entrepot.store.types import Conn


@dataclass
class Outcome:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    record_id: str = ""  # which record a write touched, for its audit row
    change: Change | None = None  # what the change feed records for it


@dataclass(frozen=True)
class Change:
    op: str
    record_id: str
    version: int
    data: str | None
    prev: str | None  # the record before the change (None: it did not exist)


@dataclass(frozen=True)
class WriteRequest:
    """What identifies a write for idempotency: key, and a digest of the request."""

    idempotency_key: str | None
    fingerprint: bytes


@dataclass(frozen=True)
class ListLimits:
    """What one list request may cost: a scan of at most ``scan_rows`` records (by
    PostgreSQL's estimate) when no index serves it, and ``timeout`` seconds in all."""

    scan_rows: int = 100_000
    timeout: float = 5.0


class RecordService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        registry: DatasetRegistry,
        access: AccessResolver,
        limits: ListLimits | None = None,
    ) -> None:
        self.pool = pool
        self.registry = registry
        self.access = access
        self.limits = limits or ListLimits()

    # --- reads ------------------------------------------------------------

    async def get(
        self, principal: Principal, dataset: str, record_id: str, if_none_match: ETagSet | None
    ) -> Outcome:
        access = readable_records(await self.access.for_dataset(principal, dataset))
        meta = access.meta
        view = read_view(access) if access.narrowed else None
        try:
            if view is not None:
                sql, args = query.build_get_sql(
                    meta.table, meta.id, record_id, view.schema, view.row_conditions
                )
                row = await self.pool.fetchrow(sql, *args)
            else:
                row = await repo.get(self.pool, meta, record_id)
        except asyncpg.UndefinedTableError:  # dropped since the catalog cache read it
            self.registry.forget(dataset)
            raise NotFound(
                f"Dataset {dataset!r} does not exist or is not visible to you."
            ) from None
        if row is None:
            raise NotFound(f"Record {record_id!r} does not exist in {dataset!r}.")
        data = view.project_text(row[2]) if view is not None else row[2]
        if view is not None and view.fields is not None:
            # What the grant cannot see must not move its validator: a change to
            # hidden fields only leaves the tag (and the feed) as they were.
            tag = render.view_etag(row[0], data)
        else:
            tag = render.etag(row[1])
        if if_none_match is not None and if_none_match.matches_weak_tag(tag):
            return Outcome(304, headers={"ETag": tag})
        return Outcome(200, render.envelope(row[0], row[1], data, row[3], row[4]), {"ETag": tag})

    async def list(
        self, principal: Principal, dataset: str, params: Iterable[tuple[str, str]]
    ) -> Outcome:
        access = readable_records(await self.access.for_dataset(principal, dataset))
        meta = access.meta
        view = read_view(access)
        parsed = query.parse(params, view.schema)
        scanned = query.scan_fields(parsed, view.schema, meta.indexes)
        if scanned and meta.estimated_rows > self.limits.scan_rows:
            raise _needs_index(meta, scanned, view.schema)
        sql, args = query.build_sql(meta.table, meta.id, parsed, view.schema, view.row_conditions)
        try:
            rows = await self.pool.fetch(sql, *args, timeout=self.limits.timeout)
        except asyncpg.UndefinedTableError:
            self.registry.forget(dataset)
            raise NotFound(
                f"Dataset {dataset!r} does not exist or is not visible to you."
            ) from None
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
        return Outcome(200, render.page(items, cursor))

    # --- writes -----------------------------------------------------------

    async def create(
        self, principal: Principal, dataset: str, body: bytes, request: WriteRequest
    ) -> Outcome:
        async def op(conn: Conn, meta: DatasetMeta) -> Outcome:
            data = _parse_record(body)
            record_id = validation.record_id(meta, data, None) if meta.primary_key else new_id()
            validation.validate(meta, data)
            row = await repo.insert(conn, meta, record_id, jsonbody.dumps_parsed(data))
            if row is None:
                raise Conflict(
                    f"A record with id {record_id!r} already exists; use PUT to replace it."
                )
            return _written(201, meta, row, location=True)

        return await self._write(principal, dataset, request, op, "record.created")

    async def replace(
        self,
        principal: Principal,
        dataset: str,
        record_id: str,
        body: bytes,
        if_match: ETagSet | None,
        if_none_match: ETagSet | None,
        request: WriteRequest,
    ) -> Outcome:
        async def op(conn: Conn, meta: DatasetMeta) -> Outcome:
            data = _parse_record(body)
            validation.record_id(meta, data, record_id)
            validation.validate(meta, data)
            text = jsonbody.dumps_parsed(data)
            if if_none_match is not None and if_none_match.any:
                row = await repo.insert(conn, meta, record_id, text)
                if row is None:
                    raise PreconditionFailed("The record exists and If-None-Match is '*'.")
                return _written(201, meta, row, location=True)
            if if_match is None:
                _require_if_match(meta)
                row = await repo.upsert(conn, meta, record_id, text)
                while row is None:  # created by another writer since the statement began
                    row = await repo.upsert(conn, meta, record_id, text)
                created = bool(row["created"])
                return _written(201 if created else 200, meta, row, row["prev"], location=created)
            current = await _check_if_match(conn, meta, record_id, if_match)
            updated = await repo.update(conn, meta, record_id, text, None)
            assert updated is not None
            return _written(200, meta, updated, current[1])

        return await self._write(principal, dataset, request, op, "record.replaced")

    async def patch(
        self,
        principal: Principal,
        dataset: str,
        record_id: str,
        body: bytes,
        if_match: ETagSet | None,
        request: WriteRequest,
    ) -> Outcome:
        async def op(conn: Conn, meta: DatasetMeta) -> Outcome:
            patch_doc = _parse_record(body)
            if if_match is None:
                _require_if_match(meta)
            current = await repo.get_for_update(conn, meta, record_id)
            if current is None:
                if if_match is not None:
                    raise PreconditionFailed(f"Record {record_id!r} does not exist.")
                raise NotFound(f"Record {record_id!r} does not exist in {meta.name!r}.")
            if if_match is not None and not if_match.matches_strong(current[0]):
                raise PreconditionFailed(
                    _stale(current[0]), headers={"ETag": render.etag(current[0])}
                )
            data = merge_patch(jsonbody.loads_trusted(current[1]), patch_doc)
            validation.record_id(meta, data, record_id)
            validation.validate(meta, data)
            row = await repo.update(conn, meta, record_id, jsonbody.dumps_parsed(data), None)
            assert row is not None
            return _written(200, meta, row, current[1])

        return await self._write(principal, dataset, request, op, "record.patched")

    async def delete(
        self,
        principal: Principal,
        dataset: str,
        record_id: str,
        if_match: ETagSet | None,
        request: WriteRequest,
    ) -> Outcome:
        async def op(conn: Conn, meta: DatasetMeta) -> Outcome:
            if if_match is None:
                _require_if_match(meta)
            else:
                await _check_if_match(conn, meta, record_id, if_match)
            deleted = await repo.delete(conn, meta, record_id, None)
            if deleted is None:
                raise NotFound(f"Record {record_id!r} does not exist in {meta.name!r}.")
            change = Change("delete", record_id, deleted[0] + 1, None, deleted[1])
            return Outcome(204, record_id=record_id, change=change)

        return await self._write(principal, dataset, request, op, "record.deleted")

    async def _write(
        self,
        principal: Principal,
        dataset: str,
        request: WriteRequest,
        op: Callable[[Conn, DatasetMeta], Awaitable[Outcome]],
        action: str,
    ) -> Outcome:
        meta = writable_records(await self.access.for_dataset(principal, dataset)).meta
        key = request.idempotency_key
        scope = principal.subject
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if key is not None:
                    stored = await idempotency.claim(conn, scope, key, request.fingerprint)
                    if stored is not None:
                        headers = {**stored.headers, "Idempotent-Replayed": "true"}
                        return Outcome(stored.status, stored.body, headers)
                meta = await self.registry.lock_for_write(conn, meta)
                outcome = await op(conn, meta)
                await record(
                    conn,
                    principal,
                    "record.created" if outcome.status == 201 else action,
                    f"dataset:{meta.name}/record:{outcome.record_id}",
                    status=outcome.status,
                    org_id=meta.org_id,
                )
                if key is not None:
                    await idempotency.remember(
                        conn,
                        scope,
                        key,
                        request.fingerprint,
                        idempotency.StoredResponse(outcome.status, outcome.body, outcome.headers),
                    )
                if outcome.change is not None:
                    # Last statement before commit: the feed head's row lock,
                    # which orders seqs by commit, is held as briefly as possible.
                    c = outcome.change
                    await changes_repo.append(
                        conn, meta.id, c.op, c.record_id, c.version, c.data, c.prev
                    )
                return outcome
        except asyncpg.UndefinedTableError:
            self.registry.forget(dataset)
            raise NotFound(
                f"Dataset {dataset!r} does not exist or is not visible to you."
            ) from None
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
    try:
        data = jsonbody.loads(body)
    except jsonbody.JsonBodyError as exc:
        if exc.path is not None:
            raise Unprocessable(
                "The record cannot be stored.", errors=[{"path": exc.path, "message": exc.message}]
            ) from None
        raise BadRequest(f"The body is not valid JSON: {exc.message}") from None
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


def _written(
    status: int,
    meta: DatasetMeta,
    row: asyncpg.Record,
    prev: str | None = None,
    *,
    location: bool = False,
) -> Outcome:
    headers = {"ETag": render.etag(row["version"])}
    if location:
        headers["Location"] = f"/v1/datasets/{meta.name}/records/{quote(row['id'], safe='')}"
    change = Change("upsert", row["id"], row["version"], row["data"], prev)
    return Outcome(status, render.envelope(*row[:5]), headers, row["id"], change)
