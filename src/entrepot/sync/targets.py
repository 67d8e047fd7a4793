"""Where a mirror lives: a SQLite file or a PostgreSQL database (MySQL: :mod:`.mysql`).

Each dataset is one table ``(id, version, data)``; one more table,
``entrepot_sync_checkpoints``, holds each mirrored table's feed position.
Every write that moves a checkpoint happens in the same local transaction
as the rows it accounts for, which is the whole crash-safety argument:

- a page of changes and its new checkpoint commit together, or neither does;
- a snapshot replaces the table's rows and sets the checkpoint to the
  export's ``X-Entrepot-Seq`` in one transaction, so a crash mid-snapshot
  leaves the previous mirror (or nothing) and the snapshot simply restarts.

Applying also re-reads the checkpoint inside its transaction and drops
changes at or below it, so a page applied twice (say, by a second agent
pointed at the same file) changes nothing. The checkpoint also keeps the
dataset's incarnation, so a dataset deleted and created again under its name
is noticed (the server answers 410) instead of being mirrored on top of the
old one's rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from entrepot.store.types import Conn
from entrepot.sync.base import (
    CHECKPOINTS,
    Checkpoint,
    FeedGap,
    Row,
    SchemaDrift,
    Snapshot,
    Target,
    TargetUnavailable,
    data_text,
    rows_to_apply,
    runs,
)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- SQLite -------------------------------------------------------------------


class SQLiteTarget:
    """One connection; every transaction runs without awaiting, so coroutines never mix.

    The snapshot streams into a TEMP table (gone with the connection, so a
    crash leaves nothing behind) and swaps it in with one short transaction.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} ("
            "table_name TEXT PRIMARY KEY, dataset TEXT NOT NULL, seq INTEGER NOT NULL, "
            "synced_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), "
            "incarnation TEXT)"
        )
        columns = {row[1] for row in self.db.execute(f"PRAGMA table_info({CHECKPOINTS})")}
        if "incarnation" not in columns:  # a mirror made by an earlier version
            self.db.execute(f"ALTER TABLE {CHECKPOINTS} ADD COLUMN incarnation TEXT")

    schema_bound = False  # (id, version, data) whatever the schema

    async def prepare(self, table: str, dataset: str, schema: dict[str, Any]) -> str | None:
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {quote(table)} "
            "(id TEXT PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL)"
        )
        return None

    async def checkpoint(self, table: str) -> Checkpoint | None:
        row = self.db.execute(
            f"SELECT seq, incarnation FROM {CHECKPOINTS} WHERE table_name = ?", (table,)
        ).fetchone()
        return None if row is None else Checkpoint(int(row[0]), row[1])

    def _checkpoint(self, table: str) -> int | None:
        row = self.db.execute(
            f"SELECT seq FROM {CHECKPOINTS} WHERE table_name = ?", (table,)
        ).fetchone()
        return None if row is None else int(row[0])

    def _set_checkpoint(
        self, table: str, dataset: str, seq: int, incarnation: str | None = None
    ) -> None:
        """Move the checkpoint; a snapshot (``incarnation`` given) also sets its incarnation."""
        self.db.execute(
            f"INSERT INTO {CHECKPOINTS} (table_name, dataset, seq, incarnation) "
            "VALUES (?, ?, ?, ?) "
            "ON CONFLICT (table_name) DO UPDATE SET dataset = excluded.dataset, "
            "seq = excluded.seq, synced_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), "
            "incarnation = coalesce(excluded.incarnation, incarnation)",
            (table, dataset, seq, incarnation),
        )

    @asynccontextmanager
    async def snapshot(self, table: str, dataset: str) -> AsyncIterator[Snapshot]:
        staging = quote("stage_" + table)
        self.db.execute(f"DROP TABLE IF EXISTS temp.{staging}")
        self.db.execute(
            f"CREATE TEMP TABLE {staging} "
            "(id TEXT PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL)"
        )
        try:
            yield _SQLiteSnapshot(self, table, dataset, staging)
        finally:
            self.db.execute(f"DROP TABLE IF EXISTS temp.{staging}")

    def _stage(self, staging: str, rows: Sequence[Row]) -> None:
        with _transaction(self.db):
            self.db.executemany(
                f"INSERT OR REPLACE INTO temp.{staging} (id, version, data) VALUES (?, ?, ?)", rows
            )

    def _swap(
        self, table: str, dataset: str, staging: str, seq: int, incarnation: str | None
    ) -> None:
        with _transaction(self.db):
            self.db.execute(f"DELETE FROM main.{quote(table)}")
            self.db.execute(
                f"INSERT INTO main.{quote(table)} (id, version, data) "
                f"SELECT id, version, data FROM temp.{staging}"
            )
            self._set_checkpoint(table, dataset, seq, incarnation)

    async def apply(
        self, table: str, dataset: str, changes: Sequence[dict[str, Any]], last_seq: int
    ) -> int:
        return self.apply_now(table, dataset, changes, last_seq)

    def apply_now(
        self, table: str, dataset: str, changes: Sequence[dict[str, Any]], last_seq: int
    ) -> int:
        """The apply step, synchronously: one transaction for the page and its checkpoint."""
        name = quote(table)
        with _transaction(self.db):
            current = self._checkpoint(table) or 0
            if last_seq <= current:
                return current
            for change in rows_to_apply(current, changes, last_seq):
                if change["op"] == "upsert":
                    self.db.execute(
                        f"INSERT INTO {name} (id, version, data) VALUES (?, ?, ?) "
                        "ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
                        f"data = excluded.data WHERE excluded.version > {name}.version",
                        (str(change["id"]), int(change["version"]), data_text(change)),
                    )
                else:
                    self.db.execute(
                        f"DELETE FROM {name} WHERE id = ? AND version < ?",
                        (str(change["id"]), int(change["version"])),
                    )
            self._set_checkpoint(table, dataset, last_seq)
        return last_seq

    async def close(self) -> None:
        self.db.close()


class _SQLiteSnapshot:
    def __init__(self, target: SQLiteTarget, table: str, dataset: str, staging: str) -> None:
        self.target, self.table, self.dataset, self.staging = target, table, dataset, staging

    async def add(self, rows: Sequence[Row]) -> None:
        self.target._stage(self.staging, rows)

    async def commit(self, seq: int, incarnation: str | None) -> None:
        self.target._swap(self.table, self.dataset, self.staging, seq, incarnation)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


# -- PostgreSQL -----------------------------------------------------------------


class PostgresTarget:
    """A pool; a snapshot is one transaction on its own connection (COPY into the table)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, dsn: str) -> PostgresTarget:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
        async with pool.acquire() as conn:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (table_name text PRIMARY KEY, "
                "dataset text NOT NULL, seq bigint NOT NULL, "
                "synced_at timestamptz NOT NULL DEFAULT now(), incarnation text)"
            )
            # A mirror made by an earlier version has no incarnation column yet.
            await conn.execute(
                f"ALTER TABLE {CHECKPOINTS} ADD COLUMN IF NOT EXISTS incarnation text"
            )
        return cls(pool)

    schema_bound = False

    async def prepare(self, table: str, dataset: str, schema: dict[str, Any]) -> str | None:
        await self.pool.execute(
            f"CREATE TABLE IF NOT EXISTS {quote(table)} "
            "(id text PRIMARY KEY, version bigint NOT NULL, data jsonb NOT NULL)"
        )
        return None

    async def checkpoint(self, table: str) -> Checkpoint | None:
        row = await self.pool.fetchrow(
            f"SELECT seq, incarnation FROM {CHECKPOINTS} WHERE table_name = $1", table
        )
        return None if row is None else Checkpoint(int(row[0]), row[1])

    @staticmethod
    async def _set_checkpoint(
        conn: Conn, table: str, dataset: str, seq: int, incarnation: str | None = None
    ) -> None:
        """Move the checkpoint; a snapshot (``incarnation`` given) also sets its incarnation."""
        await conn.execute(
            f"INSERT INTO {CHECKPOINTS} AS c (table_name, dataset, seq, incarnation) "
            "VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (table_name) DO UPDATE SET dataset = excluded.dataset, "
            "seq = excluded.seq, synced_at = now(), "
            "incarnation = coalesce(excluded.incarnation, c.incarnation)",
            table,
            dataset,
            seq,
            incarnation,
        )

    @asynccontextmanager
    async def snapshot(self, table: str, dataset: str) -> AsyncIterator[Snapshot]:
        """One transaction: empty the table, COPY the export, set the checkpoint.

        It commits only if :meth:`Snapshot.commit` was called; left any other
        way, it rolls back and the previous mirror stays as it was.
        """
        async with self.pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            loader = _PostgresSnapshot(conn, table, dataset)
            try:
                await conn.execute(f"DELETE FROM {quote(table)}")
                yield loader
            except BaseException:
                await transaction.rollback()
                raise
            if loader.done:
                await transaction.commit()
            else:
                await transaction.rollback()

    async def apply(
        self, table: str, dataset: str, changes: Sequence[dict[str, Any]], last_seq: int
    ) -> int:
        name = quote(table)
        async with self.pool.acquire() as conn, conn.transaction():
            current: int = (
                await conn.fetchval(
                    f"SELECT seq FROM {CHECKPOINTS} WHERE table_name = $1 FOR UPDATE", table
                )
                or 0
            )
            if last_seq <= current:
                return current
            for op, run in runs(rows_to_apply(current, changes, last_seq)):
                if op == "upsert":
                    await conn.executemany(
                        f"INSERT INTO {name} (id, version, data) VALUES ($1, $2, $3::jsonb) "
                        "ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
                        f"data = excluded.data WHERE excluded.version > {name}.version",
                        [(str(c["id"]), int(c["version"]), data_text(c)) for c in run],
                    )
                else:
                    await conn.executemany(
                        f"DELETE FROM {name} WHERE id = $1 AND version < $2",
                        [(str(c["id"]), int(c["version"])) for c in run],
                    )
            await self._set_checkpoint(conn, table, dataset, last_seq)
        return last_seq

    async def close(self) -> None:
        await self.pool.close()


class _PostgresSnapshot:
    def __init__(self, conn: Conn, table: str, dataset: str) -> None:
        self.conn, self.table, self.dataset = conn, table, dataset
        self.done = False

    async def add(self, rows: Sequence[Row]) -> None:
        await self.conn.copy_records_to_table(
            self.table, records=rows, columns=["id", "version", "data"]
        )

    async def commit(self, seq: int, incarnation: str | None) -> None:
        await PostgresTarget._set_checkpoint(self.conn, self.table, self.dataset, seq, incarnation)
        self.done = True


async def open_target(url: str) -> Target:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``postgresql://...`` or
    ``mysql://`` (``mariadb://``) ``user:password@host:port/database``."""
    if url.startswith("sqlite:///"):
        return SQLiteTarget(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresTarget.connect(url)
    if url.startswith(("mysql://", "mariadb://")):
        from entrepot.sync.mysql import MySQLTarget  # its driver only when asked for

        return await MySQLTarget.connect(url)
    raise ValueError(
        "--to must be sqlite:///PATH, postgresql://... or mysql://USER:PASSWORD@HOST:PORT/DB"
    )


__all__ = [
    "CHECKPOINTS",
    "Checkpoint",
    "FeedGap",
    "PostgresTarget",
    "Row",
    "SQLiteTarget",
    "SchemaDrift",
    "Snapshot",
    "Target",
    "TargetUnavailable",
    "open_target",
    "quote",
]
