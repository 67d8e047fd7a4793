"""SQL for records. Every statement addresses the dataset's own partition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from entrepot.auditing.log import insert_from
from entrepot.changes.repository import append_from
from entrepot.datasets.registry import DatasetMeta
from entrepot.principal import Principal
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


# --- writes -------------------------------------------------------------------
#
# A write is one statement: the dataset's current schema version (``ds``), the
# record written only if it is still the one the body was validated against
# (``w``), its pending feed entry (``c``) and its audit row (``a``), both read
# from what ``w`` wrote. One round trip: in autocommit when the request's unit
# has not begun a transaction (``LazyWork``: the statement is the whole write),
# else in it. No schema change can commit between the version read and the
# write: the statement holds ``ROW EXCLUSIVE`` on the records partition from
# before its snapshot is taken (PostgreSQL locks a statement's tables when it
# binds it) to its commit, and a schema change takes ``SHARE`` on it, so it
# either committed before the snapshot (the guard sees its version) or waits
# for this write (and then checks the record). Locks in the order every path
# takes them: the partition, then rows.


@dataclass(frozen=True, slots=True)
class Insert:
    """Create the record; nothing if the id is taken."""

    record_id: str
    data: str


@dataclass(frozen=True, slots=True)
class Upsert:
    """Create or replace. Nothing if a row appeared after the statement's snapshot
    (``old`` did not see it, so it is left alone): run it again."""

    record_id: str
    data: str


@dataclass(frozen=True, slots=True)
class Update:
    """Replace an existing record whose current ``prev`` the caller read, locked."""

    record_id: str
    data: str
    prev: str
    action: Literal["replaced", "patched"]


@dataclass(frozen=True, slots=True)
class Delete:
    record_id: str


Write = Insert | Upsert | Update | Delete


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """The record after a write (``data`` None once deleted) and the state it replaced."""

    id: str
    version: int
    data: str | None
    created_at: datetime
    updated_at: datetime
    prev: str | None
    created: bool


@dataclass(frozen=True, slots=True)
class Stored:
    """What a write statement found and did."""

    seen: tuple[int, bool] | None  # the dataset's (schema_version, require_if_match); None: gone
    record: StoredRecord | None  # None: nothing written

    def current_for(self, meta: DatasetMeta) -> bool:
        return self.seen == (meta.schema_version, meta.require_if_match)


_GUARD = "SELECT 1 FROM ds WHERE schema_version = $2 AND require_if_match = $3"
_OUT = "id, version, data, created_at, updated_at"


def _record_cte(meta: DatasetMeta, write: Write) -> tuple[str, list[Any]]:
    """``w`` (with ``old`` for an upsert), returning the columns of :class:`StoredRecord`."""
    t, ds = meta.table, meta.id
    if isinstance(write, Insert):
        return (
            f"w AS (INSERT INTO {t} (dataset_id, id, version, data) "
            f"SELECT {ds}, $1, 1, $4::jsonb FROM ds WHERE EXISTS ({_GUARD}) "
            f"ON CONFLICT DO NOTHING RETURNING {_OUT}, NULL::jsonb AS prev, true AS created)"
        ), [write.data]
    if isinstance(write, Upsert):
        return (
            f"old AS (SELECT data FROM {t} WHERE dataset_id = {ds} AND id = $1 FOR UPDATE), "
            f"w AS (INSERT INTO {t} AS r (dataset_id, id, version, data) "
            f"SELECT {ds}, $1, 1, $4::jsonb FROM ds WHERE EXISTS ({_GUARD}) "
            "ON CONFLICT (dataset_id, id) DO UPDATE SET data = EXCLUDED.data, "
            "version = r.version + 1, updated_at = now() WHERE EXISTS (SELECT 1 FROM old) "
            "RETURNING r.id, r.version, r.data, r.created_at, r.updated_at, "
            "(SELECT data FROM old) AS prev, (r.xmax = 0) AS created)"
        ), [write.data]
    if isinstance(write, Update):
        return (
            f"w AS (UPDATE {t} SET data = $4::jsonb, version = version + 1, updated_at = now() "
            f"WHERE dataset_id = {ds} AND id = $1 AND EXISTS ({_GUARD}) "
            f"RETURNING {_OUT}, $5::jsonb AS prev, false AS created)"
        ), [write.data, write.prev]
    return (
        f"w AS (DELETE FROM {t} WHERE dataset_id = {ds} AND id = $1 AND EXISTS ({_GUARD}) "
        "RETURNING id, version + 1 AS version, NULL::jsonb AS data, created_at, updated_at, "
        "data AS prev, false AS created)"
    ), []


def _audit_names(write: Write) -> tuple[str, str]:
    """The audit row's action and status, as SQL over ``w`` (constants only)."""
    if isinstance(write, Insert):
        return "'record.created'", "201"
    if isinstance(write, Upsert):
        return (
            "CASE WHEN w.created THEN 'record.created' ELSE 'record.replaced' END",
            "CASE WHEN w.created THEN 201 ELSE 200 END",
        )
    if isinstance(write, Update):
        return f"'record.{write.action}'", "200"
    return "'record.deleted'", "204"


async def write(conn: Conn, meta: DatasetMeta, write: Write, principal: Principal) -> Stored:
    """Run ``write`` against ``meta`` as validated (see the section comment)."""
    record_cte, record_args = _record_cte(meta, write)
    args: list[Any] = [write.record_id, meta.schema_version, meta.require_if_match, *record_args]
    action, status = _audit_names(write)
    audit_sql, audit_args = insert_from(
        "w",
        len(args) + 1,
        principal,
        action_sql=action,
        status_sql=status,
        target=f"dataset:{meta.name}/record:{write.record_id}",
        org_id=meta.org_id,
    )
    op: Literal["upsert", "delete"] = "delete" if isinstance(write, Delete) else "upsert"
    row = await conn.fetchrow(
        f"WITH ds AS (SELECT schema_version, require_if_match FROM datasets "
        f"WHERE id = {meta.id}), {record_cte}, "
        f"c AS ({append_from('w', meta.id, op)}), a AS ({audit_sql}) "
        "SELECT l.schema_version, l.require_if_match, w.id, w.version, w.data::text, "
        "w.created_at, w.updated_at, w.prev::text, w.created "
        "FROM (SELECT 1) AS one LEFT JOIN ds l ON true LEFT JOIN w ON true",
        *args,
        *audit_args,
    )
    assert row is not None
    seen = None if row[0] is None else (row[0], row[1])
    record = None if row[2] is None else StoredRecord(*row[2:])
    return Stored(seen, record)


async def current_version(conn: Conn, meta: DatasetMeta, record_id: str) -> int | None:
    version: int | None = await conn.fetchval(
        f"SELECT version FROM {meta.table} WHERE dataset_id = {meta.id} AND id = $1", record_id
    )
    return version
