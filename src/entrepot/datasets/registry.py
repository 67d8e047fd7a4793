"""Dataset metadata for the hot paths, cached per process for about a second.

Reads tolerate a second of staleness (the bound on visibility changes
reaching every replica). Writes never trust the cache alone: each write
statement compares ``schema_version`` with the one it was validated against,
and a write of several statements holds the dataset's records partition
(``lock_for_write``) so that no schema change commits in between.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from entrepot import jsonbody
from entrepot.components import Components
from entrepot.problems import NotFound
from entrepot.schema.record_schema import RecordSchema
from entrepot.store.sql import records_table
from entrepot.store.types import Conn, Executor

DATASET_TOPIC = "dataset:"


@dataclass(frozen=True)
class DatasetMeta:
    id: int
    name: str
    org_id: uuid.UUID
    schema_version: int
    primary_key: str | None
    visibility: str
    indexes: tuple[str, ...]
    require_if_match: bool
    schema: RecordSchema
    estimated_rows: int = 0  # PostgreSQL's estimate for the dataset's partition

    @property
    def table(self) -> str:
        return records_table(self.id)


META_COLUMNS = (
    "id, name, org_id, schema::text AS schema, schema_version, primary_key, visibility, "
    "indexes, require_if_match"
)
# Reads also learn the partition's size (for the list cost rule); writes need not.
READ_COLUMNS = (
    f"{META_COLUMNS}, (SELECT greatest(c.reltuples, 0)::bigint FROM pg_class c "
    "WHERE c.oid = to_regclass('records_' || datasets.id)) AS estimated_rows"
)


def _estimated_rows(row: asyncpg.Record) -> int | None:
    """The row's size estimate; None when it was read without one (a write's lock)."""
    found = row.get("estimated_rows", -1)
    return None if found == -1 else int(found or 0)


def meta_from_row(row: asyncpg.Record) -> DatasetMeta:
    schema_doc: dict[str, Any] = jsonbody.loads_trusted(row["schema"])
    return DatasetMeta(
        id=row["id"],
        name=row["name"],
        org_id=row["org_id"],
        schema_version=row["schema_version"],
        primary_key=row["primary_key"],
        visibility=row["visibility"],
        indexes=tuple(row["indexes"]),
        require_if_match=row["require_if_match"],
        schema=RecordSchema.compile(schema_doc).keyed_by(row["primary_key"]),
        estimated_rows=_estimated_rows(row) or 0,
    )


class DatasetRegistry:
    def __init__(self, pool: asyncpg.Pool, ttl: float) -> None:
        self.pool = pool
        self.ttl = ttl
        self._entries: dict[str, tuple[float, DatasetMeta]] = {}
        self._compiled: dict[tuple[int, int], DatasetMeta] = {}

    async def get(self, name: str, conn: Executor | None = None) -> DatasetMeta:
        """The dataset's metadata, cached; a miss reads it on ``conn`` (the request's
        own connection) or the pool."""
        hit = self._entries.get(name)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        row = await (conn or self.pool).fetchrow(
            f"SELECT {READ_COLUMNS} FROM datasets WHERE name = $1", name
        )
        if row is None:
            self._entries.pop(name, None)
            raise NotFound(f"Dataset {name!r} does not exist or is not visible to you.")
        return self.remember(row)

    def remember(self, row: asyncpg.Record) -> DatasetMeta:
        key = (row["id"], row["schema_version"])
        meta = self._compiled.get(key)
        if (
            meta is None
            or meta.visibility != row["visibility"]
            or meta.indexes != tuple(row["indexes"])
            or meta.require_if_match != row["require_if_match"]
        ):
            meta = meta_from_row(row)
            if len(self._compiled) > 10_000:
                self._compiled.clear()
            self._compiled[key] = meta
        else:
            rows = _estimated_rows(row)
            if rows is not None and rows != meta.estimated_rows:
                meta = replace(meta, estimated_rows=rows)
                self._compiled[key] = meta
        if self.ttl > 0:
            self._entries[row["name"]] = (time.monotonic() + self.ttl, meta)
        return meta

    def forget(self, name: str) -> None:
        self._entries.pop(name, None)

    def clear(self) -> None:
        self._entries.clear()

    @staticmethod
    def topic(name: str) -> str:
        """What a change to dataset ``name`` announces to the other replicas."""
        return DATASET_TOPIC + name

    def subscribe(self, parts: Components) -> None:
        def drop(topic: str) -> None:
            if topic.startswith(DATASET_TOPIC):
                self.forget(topic.removeprefix(DATASET_TOPIC))
            else:
                self.clear()

        parts.on_invalidate(drop, prefixes=[DATASET_TOPIC])

    async def lock_for_write(self, conn: Conn, meta: DatasetMeta) -> DatasetMeta:
        """Hold the dataset against schema changes until commit; return current metadata.

        The lock is the one every write takes anyway, ``ROW EXCLUSIVE`` on the records
        partition, taken now: writers share it, while a schema change (``SHARE``, then
        the dataset row) and a deletion (``ACCESS EXCLUSIVE``) wait for them, and they
        for it. Always the partition before the dataset row, in every path, so no two
        of them can wait for each other. No row lock: many writers share-locking one
        row would make PostgreSQL build a MultiXact for each (bench/RESULTS.md).
        The metadata is read after the lock is granted, so it is what committed last.
        """
        await conn.execute(f"LOCK TABLE {meta.table} IN ROW EXCLUSIVE MODE")
        row = await conn.fetchrow(f"SELECT {META_COLUMNS} FROM datasets WHERE id = $1", meta.id)
        if row is None:
            self.forget(meta.name)
            raise NotFound(f"Dataset {meta.name!r} does not exist or is not visible to you.")
        if (
            row["schema_version"] == meta.schema_version
            and row["require_if_match"] == meta.require_if_match
        ):
            return meta
        return self.remember(row)
