"""SQL for datasets, including each dataset's partition DDL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from entrepot.store.sql import (
    changes_table,
    field_expr,
    field_index_name,
    id_expr,
    id_index_name,
    records_table,
)
from entrepot.store.types import Conn, Executor

DATASET_COLUMNS = """
    d.id, d.name, o.name AS org, d.org_id, d.title, d.description, d.schema::text AS schema,
    d.schema_version, d.primary_key, d.visibility, d.indexes, d.tags, d.require_if_match,
    d.created_at, d.updated_at, d.auto_approve, d.license, d.license_url,
    d.contact::text AS contact
"""


@dataclass(frozen=True, slots=True)
class DatasetRow:
    """A dataset as the catalog reads it (``DATASET_COLUMNS``, in their order)."""

    id: int
    name: str
    org: str
    org_id: uuid.UUID
    title: str
    description: str
    schema: str  # the JSON Schema document, as text
    schema_version: int
    primary_key: str | None
    visibility: str
    indexes: list[str]
    tags: list[str]
    require_if_match: bool
    created_at: datetime
    updated_at: datetime
    auto_approve: bool
    license: str | None
    license_url: str | None
    contact: str | None  # {"name", "email", "url"} as JSON text

    @classmethod
    def of(cls, row: asyncpg.Record) -> DatasetRow:
        return cls(*row[:19])


@dataclass(frozen=True, slots=True)
class ListedDataset:
    """A dataset in a listing, and the fields of the viewer's grant when that grant is
    the only reason the viewer sees it (None otherwise)."""

    dataset: DatasetRow
    grant_fields: list[str] | None


@dataclass(frozen=True, slots=True)
class NarrowingGrant:
    """A live grant that narrows what it shows: its fields and row filter (JSON text)."""

    id: uuid.UUID
    fields: list[str] | None
    row_filter: str | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> NarrowingGrant:
        return cls(*row)


async def insert_dataset(conn: Conn, values: dict[str, Any]) -> int:
    """The dataset and its partition of ``records``; its partition of ``changes`` is
    made by a trigger on ``datasets`` (migration 0007), so no path can skip it."""
    dataset_id: int = await conn.fetchval(
        """
        INSERT INTO datasets (name, org_id, title, description, schema, primary_key,
                              visibility, indexes, tags, require_if_match, auto_approve,
                              license, license_url, contact)
        VALUES ($1, $2, $3, $4, $5::json, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb)
        RETURNING id
        """,
        values["name"],
        values["org_id"],
        values["title"],
        values["description"],
        values["schema"],
        values["primary_key"],
        values["visibility"],
        values["indexes"],
        values["tags"],
        values["require_if_match"],
        values["auto_approve"],
        values["license"],
        values["license_url"],
        values["contact"],
    )
    # Made as a table of its own, then attached, as the change log's partitions are:
    # CREATE TABLE ... PARTITION OF would hold ACCESS EXCLUSIVE on ``records`` until
    # the dataset's creation commits, and a backend opening any dataset's partition
    # for the first time reads its bound under a lock on ``records``; ATTACH takes
    # SHARE UPDATE EXCLUSIVE, which readers and writers pass.
    table = records_table(dataset_id)
    await conn.execute(
        f"CREATE TABLE {table} (LIKE records INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    await conn.execute(
        f"ALTER TABLE records ATTACH PARTITION {table} FOR VALUES IN ({int(dataset_id)})"
    )
    return dataset_id


async def create_id_index(conn: Conn, dataset_id: int) -> None:
    """Integer ids in numeric order, for lists and exports (the primary key orders text)."""
    await conn.execute(
        f"CREATE INDEX IF NOT EXISTS {id_index_name(dataset_id)} "
        f"ON {records_table(dataset_id)} ({id_expr(True)})"
    )


def _field_index_columns(field: str, integer_ids: bool) -> str:
    """A field, then the id as a sorted page breaks ties (``query.build_sql``)."""
    return f"(({field_expr(field)}), {id_expr(integer_ids)})"


async def create_field_index(conn: Conn, dataset_id: int, field: str, integer_ids: bool) -> None:
    await conn.execute(
        f"CREATE INDEX IF NOT EXISTS {field_index_name(dataset_id, field)} "
        f"ON {records_table(dataset_id)} {_field_index_columns(field, integer_ids)}"
    )


async def drop_field_index(conn: Conn, dataset_id: int, field: str) -> None:
    await conn.execute(f"DROP INDEX IF EXISTS {field_index_name(dataset_id, field)}")


async def field_index_valid(conn: Conn, dataset_id: int, field: str) -> bool | None:
    """Whether the field's index is usable; None when there is none."""
    valid: bool | None = await conn.fetchval(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
        field_index_name(dataset_id, field),
    )
    return valid


async def create_field_index_concurrently(
    conn: Conn, dataset_id: int, field: str, integer_ids: bool
) -> None:
    """Build the index while writes go on; outside any transaction."""
    await conn.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {field_index_name(dataset_id, field)} "
        f"ON {records_table(dataset_id)} {_field_index_columns(field, integer_ids)}"
    )


async def drop_field_index_concurrently(conn: Conn, dataset_id: int, field: str) -> None:
    await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {field_index_name(dataset_id, field)}")


async def record_batch(
    conn: Executor, dataset_id: int, after: str, limit: int
) -> list[tuple[str, str]]:
    """Up to ``limit`` records ``(id, data text)`` after id ``after``, in id order."""
    return _pairs(
        await conn.fetch(
            f"SELECT id, data::text FROM {records_table(dataset_id)} "
            "WHERE dataset_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            dataset_id,
            after,
            limit,
        )
    )


async def records_by_id(conn: Executor, dataset_id: int, ids: list[str]) -> list[tuple[str, str]]:
    """The records ``(id, data text)`` among ``ids`` that exist."""
    return _pairs(
        await conn.fetch(
            f"SELECT id, data::text FROM {records_table(dataset_id)} "
            "WHERE dataset_id = $1 AND id = ANY($2::text[])",
            dataset_id,
            ids,
        )
    )


def _pairs(rows: list[asyncpg.Record]) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in rows]


async def hold_records(conn: Conn, dataset_id: int, mode: str) -> None:
    """Lock the dataset's records partition until commit, before its dataset row (the
    order every path takes them: see ``DatasetRegistry.lock_for_write``). ``SHARE``
    keeps writers out while letting readers read (a schema change); ``ACCESS
    EXCLUSIVE`` keeps everyone out (a deletion)."""
    assert mode in ("SHARE", "ACCESS EXCLUSIVE")
    await conn.execute(f"LOCK TABLE {records_table(dataset_id)} IN {mode} MODE")


async def get_dataset(conn: Executor, name: str, *, for_update: bool = False) -> DatasetRow | None:
    lock = " FOR UPDATE OF d" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {DATASET_COLUMNS} FROM datasets d JOIN orgs o ON o.id = d.org_id "
        f"WHERE d.name = $1{lock}",
        name,
    )
    return None if row is None else DatasetRow.of(row)


async def list_datasets(
    conn: Executor,
    *,
    is_admin: bool,
    viewer_orgs: list[uuid.UUID],
    viewer_app: uuid.UUID | None,
    readable: list[str],
    q: str | None,
    org: str | None,
    tag: str | None,
    after: str | None,
    limit: int,
) -> list[ListedDataset]:
    """Datasets the viewer may see: admin, own org, a live grant, or a visibility in
    ``readable`` (``public`` and ``open``; ``open`` alone for anonymous callers).

    ``grant_fields`` is the narrowing of the viewer's grant where that grant is
    the only reason it sees the dataset (NULL otherwise).
    """
    rows = await conn.fetch(
        f"""
        SELECT {DATASET_COLUMNS},
               CASE WHEN $1 OR d.org_id = ANY($2) OR d.visibility = ANY($9) THEN NULL
                    ELSE g.fields END AS grant_fields
        FROM datasets d JOIN orgs o ON o.id = d.org_id
        LEFT JOIN LATERAL (
            SELECT id, fields FROM grants
            WHERE app_id = $3 AND dataset_id = d.id AND revoked_at IS NULL
              AND (expires_at IS NULL OR expires_at > now())
            ORDER BY created_at DESC LIMIT 1
        ) g ON true
        WHERE ($1 OR d.visibility = ANY($9) OR d.org_id = ANY($2)
               OR ($3::uuid IS NOT NULL AND g.id IS NOT NULL))
          AND ($4::text IS NULL OR d.search @@ websearch_to_tsquery('simple', $4))
          AND ($5::text IS NULL OR o.name = $5)
          AND ($6::text IS NULL OR d.tags @> ARRAY[$6])
          AND ($7::text IS NULL OR d.name > $7)
        ORDER BY d.name
        LIMIT $8
        """,
        is_admin,
        viewer_orgs,
        viewer_app,
        q,
        org,
        tag,
        after,
        limit,
        readable,
    )
    return [ListedDataset(DatasetRow.of(row), row["grant_fields"]) for row in rows]


async def update_dataset(conn: Conn, dataset_id: int, changes: dict[str, Any]) -> None:
    allowed = {
        "title": "$%d",
        "description": "$%d",
        "schema": "$%d::json",
        "visibility": "$%d",
        "indexes": "$%d",
        "tags": "$%d",
        "require_if_match": "$%d",
        "auto_approve": "$%d",
        "license": "$%d",
        "license_url": "$%d",
        "contact": "$%d::jsonb",
    }
    sets = []
    args: list[Any] = [dataset_id]
    for column, value in changes.items():
        args.append(value)
        sets.append(f"{column} = {allowed[column] % len(args)}")
    if "schema" in changes:
        sets.append("schema_version = schema_version + 1")
    sets.append("updated_at = now()")
    await conn.execute(f"UPDATE datasets SET {', '.join(sets)} WHERE id = $1", *args)


async def delete_dataset(conn: Conn, dataset_id: int) -> None:
    """The dataset and its records. Its change log is not deleted row by row: a trigger
    queues its partition, which the feed waker detaches and drops after the commit
    (:mod:`entrepot.changes.retire`)."""
    await conn.execute("DELETE FROM datasets WHERE id = $1", dataset_id)
    await conn.execute(f"DROP TABLE IF EXISTS {records_table(dataset_id)}")


async def live_grant_narrowing(conn: Conn, dataset_id: int) -> list[NarrowingGrant]:
    rows = await conn.fetch(
        "SELECT id, fields, row_filter::text AS row_filter FROM grants "
        "WHERE dataset_id = $1 AND revoked_at IS NULL "
        "AND (fields IS NOT NULL OR row_filter IS NOT NULL)",
        dataset_id,
    )
    return [NarrowingGrant.of(row) for row in rows]


EXACT_COUNT_ROWS = 100_000  # above PostgreSQL's estimate of this many, the estimate is shown
RECENT_CHANGES = 10_000  # how far back from the newest change the rate is counted


@dataclass(frozen=True, slots=True)
class Activity:
    """How big a dataset is and how fast it changes: its record count (exact up to
    ``EXACT_COUNT_ROWS``, else PostgreSQL's estimate) and its changes in the last 24
    hours (counted among its newest ``RECENT_CHANGES``, by the change log's key)."""

    records: int
    exact: bool
    changes_last_day: int
    last_change_at: datetime | None


async def activity(conn: Executor, dataset_id: int, estimated_rows: int) -> Activity:
    exact = estimated_rows <= EXACT_COUNT_ROWS
    records = (
        int(await conn.fetchval(f"SELECT count(*) FROM {records_table(dataset_id)}"))
        if exact
        else estimated_rows
    )
    row = await conn.fetchrow(
        f"""
        SELECT count(*) FILTER (WHERE at > now() - interval '24 hours'), max(at)
        FROM (SELECT at FROM {changes_table(dataset_id)} ORDER BY seq DESC LIMIT $1) recent
        """,
        RECENT_CHANGES,
    )
    assert row is not None
    return Activity(records, exact, int(row[0]), row[1])
