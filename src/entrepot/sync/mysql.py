"""A MySQL or MariaDB mirror: ``(id, version, data)`` plus one typed column a property.

The crash-safety argument is the other targets' (:mod:`entrepot.sync.targets`),
on InnoDB transactions: a page and its checkpoint commit together; a snapshot is
staged in a TEMPORARY table (gone with its connection, so a crash leaves nothing)
and swapped in by one transaction that empties the table, copies the stage in
and sets the checkpoint. Applying re-reads the checkpoint ``FOR UPDATE`` and
skips what it already covers, so a page applied twice changes nothing.

The columns (:mod:`entrepot.sync.columns`) are the dataset's schema as the agent
sees it; the checkpoint row keeps their fingerprint. A schema whose columns
differ from the table's makes :meth:`MySQLTarget.prepare` say so (the agent
resnapshots, or stops with ``--no-resnapshot``), and that snapshot's swap is
the one step that is not a single transaction, since MySQL's DDL commits on
its own: it first deletes the checkpoint, then drops and creates the table, then
swaps as usual; a crash in between leaves no checkpoint, so the next start
snapshots again.

The driver is PyMySQL, the pure-Python one (typed by typeshed's stubs), each
transaction one synchronous function in a worker thread: like the SQLite target,
a transaction never interleaves with another coroutine's, and a task cancelled
while one runs lets it finish (its connection is then closed, never reused).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql
from pymysql.connections import Connection
from pymysql.cursors import Cursor

from entrepot import jsonbody
from entrepot.sync.base import (
    CHECKPOINTS,
    Checkpoint,
    Row,
    Snapshot,
    TargetUnavailable,
    rows_to_apply,
    runs,
)
from entrepot.sync.columns import MAX_NAME, Layout, Unholdable, quote

T = TypeVar("T")
STAGE = "entrepot_sync_stage"  # TEMPORARY, one per snapshot connection
PROBE = "entrepot_sync_probe"
# What the server says when it refuses a table's shape (the probe's CREATE).
SHAPE_ERRORS = {1060, 1071, 1074, 1117, 1118, 1166, 1300, 1059}
SESSION = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'"


@dataclass(frozen=True)
class Address:
    """Where to connect, from ``mysql://user:password@host:port/database``."""

    host: str
    port: int
    user: str | None
    password: str
    database: str
    unix_socket: str | None = None

    @classmethod
    def of(cls, url: str) -> Address:
        parts = urlsplit(url)
        database = unquote(parts.path.lstrip("/"))
        if not database or "/" in database:
            raise ValueError(
                "--to mysql://... must name one database: mysql://USER:PASSWORD@HOST:PORT/DB"
            )
        try:
            port = parts.port or 3306
        except ValueError:
            raise ValueError("--to mysql://...: the port is not a number") from None
        socket = parse_qs(parts.query).get("unix_socket")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password or ""),
            database=database,
            unix_socket=socket[0] if socket else None,
        )


class MySQLTarget:
    """A few PyMySQL connections, each used by one transaction at a time in a thread."""

    schema_bound = True

    def __init__(self, address: Address, id_collation: str) -> None:
        self.address = address
        self.id_collation = id_collation
        self.layouts: dict[str, Layout] = {}
        self.created: dict[str, str] = {}  # tables this target created: their columns
        self._idle: list[Connection[Cursor]] = []
        self._finishing: set[Connection[Cursor]] = set()  # a cancelled caller's, in a thread

    @classmethod
    async def connect(cls, url: str) -> MySQLTarget:
        address = Address.of(url)
        first = await asyncio.to_thread(_open, address)
        try:
            collation = await asyncio.to_thread(_setup, first)
        except BaseException:
            _close(first)
            raise
        target = cls(address, collation)
        target._idle.append(first)
        return target

    # -- connections -------------------------------------------------------------

    async def _acquire(self) -> Connection[Cursor]:
        if self._idle:
            return self._idle.pop()
        return await asyncio.to_thread(_open, self.address)

    async def _on(self, conn: Connection[Cursor], work: Callable[..., T], *args: Any) -> T:
        """``work(conn, *args)`` in a thread. Cancelled meanwhile, it still finishes (a
        transaction is never cut short from here) and its connection is closed after."""
        running = asyncio.ensure_future(asyncio.to_thread(work, conn, *args))
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            self._finishing.add(conn)
            running.add_done_callback(lambda done: self._closed(conn, done))
            raise

    def _closed(self, conn: Connection[Cursor], done: asyncio.Future[Any]) -> None:
        self._finishing.discard(conn)
        _close(conn, done)

    def _drop(self, conn: Connection[Cursor]) -> None:
        """Close a connection whose state is unknown, once no thread is using it."""
        if conn not in self._finishing:
            _close(conn)

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        """``work`` on a pooled connection; one that failed is closed, not pooled again."""
        conn = await self._acquire()
        try:
            result = await self._on(conn, work, *args)
        except BaseException:
            self._drop(conn)
            raise
        self._idle.append(conn)
        return result

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)

    # -- the target --------------------------------------------------------------

    async def prepare(self, table: str, dataset: str, schema: dict[str, Any]) -> str | None:
        _check_table_name(table)
        layout = Layout.of(schema)
        recorded = await self._run(self._prepare, table, layout)
        previous = self.layouts.get(table)
        self.layouts[table] = layout
        if previous is not None and previous != layout:
            return "the dataset's schema changed, and with it the mirror's typed columns"
        if recorded is not None and recorded != layout.fingerprint():
            return "the mirror's typed columns were made from another version of its schema"
        return None

    def _prepare(self, conn: Connection[Cursor], table: str, layout: Layout) -> str | None:
        """Let the server judge the shape (a TEMPORARY probe), then create the table if
        it is missing; the columns its checkpoint recorded."""
        with conn.cursor() as cur:
            try:
                cur.execute(self._create(PROBE, layout, temporary=True))
            except pymysql.err.MySQLError as exc:
                code = exc.args[0] if exc.args else None
                if code in SHAPE_ERRORS:
                    raise Unholdable(
                        f"MySQL refuses its typed columns: {exc.args[1]} (the largest "
                        f"columns are {layout.largest()})"
                    ) from None
                raise
            cur.execute(f"DROP TEMPORARY TABLE {quote(PROBE)}")
            cur.execute(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = %s",
                (table,),
            )
            if cur.fetchone() is None:
                cur.execute(self._create(table, layout))
                self.created[table] = layout.fingerprint()  # so its first swap keeps it
            cur.execute(f"SELECT layout FROM {CHECKPOINTS} WHERE table_name = %s", (table,))
            row = cur.fetchone()
        return None if row is None else row[0]

    def _create(self, table: str, layout: Layout, *, temporary: bool = False) -> str:
        columns = [
            f"`id` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {self.id_collation} "
            "NOT NULL PRIMARY KEY",
            "`version` BIGINT NOT NULL",
            "`data` LONGTEXT COLLATE utf8mb4_bin NOT NULL CHECK (JSON_VALID(`data`))",
            *(column.declaration() for column in layout.columns),
        ]
        return (
            f"CREATE {'TEMPORARY ' if temporary else ''}TABLE {quote(table)} "
            f"({', '.join(columns)}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        )

    async def checkpoint(self, table: str) -> Checkpoint | None:
        return await self._run(_checkpoint, table)

    async def apply(
        self, table: str, dataset: str, changes: Sequence[dict[str, Any]], last_seq: int
    ) -> int:
        return await self._run(self._apply, self.layouts[table], table, dataset, changes, last_seq)

    def _apply(
        self,
        conn: Connection[Cursor],
        layout: Layout,
        table: str,
        dataset: str,
        changes: Sequence[dict[str, Any]],
        last_seq: int,
    ) -> int:
        """One transaction: the page's changes and the checkpoint moved to ``last_seq``."""
        name = quote(table)
        with _transaction(conn) as cur:
            cur.execute(f"SELECT seq FROM {CHECKPOINTS} WHERE table_name = %s FOR UPDATE", (table,))
            row = cur.fetchone()
            current = int(row[0]) if row else 0
            if last_seq <= current:
                return current
            for op, run in runs(rows_to_apply(current, changes, last_seq)):
                if op == "upsert":
                    cur.executemany(
                        _upsert(name, layout),
                        [_values(layout, str(c["id"]), int(c["version"]), c["data"]) for c in run],
                    )
                else:
                    cur.executemany(
                        f"DELETE FROM {name} WHERE `id` = %s AND `version` < %s",
                        [(str(c["id"]), int(c["version"])) for c in run],
                    )
            _set_checkpoint(cur, table, dataset, last_seq)
        return last_seq

    @asynccontextmanager
    async def snapshot(self, table: str, dataset: str) -> AsyncIterator[Snapshot]:
        """Stage the export in a TEMPORARY table on a connection of its own; swapped in
        only by :meth:`Snapshot.commit`. Left any other way, the connection is closed
        and its stage goes with it: the previous mirror stays as it was."""
        layout = self.layouts[table]
        conn = await self._acquire()
        finished = False
        try:
            await self._on(conn, self._stage, layout)
            yield _MySQLSnapshot(self, conn, table, dataset, layout)
            finished = True
        finally:
            if finished:
                self._idle.append(conn)
            else:
                self._drop(conn)

    def _stage(self, conn: Connection[Cursor], layout: Layout) -> None:
        with conn.cursor() as cur:
            cur.execute(f"DROP TEMPORARY TABLE IF EXISTS {quote(STAGE)}")
            cur.execute(self._create(STAGE, layout, temporary=True))

    def _swap(
        self,
        conn: Connection[Cursor],
        layout: Layout,
        table: str,
        dataset: str,
        seq: int,
        incarnation: str | None,
    ) -> None:
        name, fingerprint = quote(table), layout.fingerprint()
        with conn.cursor() as cur:
            cur.execute(f"SELECT layout FROM {CHECKPOINTS} WHERE table_name = %s", (table,))
            row = cur.fetchone()
            columns = row[0] if row else self.created.get(table)
            if columns != fingerprint:  # new columns: DDL, which commits
                cur.execute(f"DELETE FROM {CHECKPOINTS} WHERE table_name = %s", (table,))
                cur.execute(f"DROP TABLE IF EXISTS {name}")
                cur.execute(self._create(table, layout))
        with _transaction(conn) as cur:
            cur.execute(f"DELETE FROM {name}")
            cur.execute(f"INSERT INTO {name} SELECT * FROM {quote(STAGE)}")
            _set_checkpoint(cur, table, dataset, seq, incarnation, fingerprint)
        with conn.cursor() as cur:
            cur.execute(f"DROP TEMPORARY TABLE {quote(STAGE)}")


class _MySQLSnapshot:
    def __init__(
        self,
        target: MySQLTarget,
        conn: Connection[Cursor],
        table: str,
        dataset: str,
        layout: Layout,
    ) -> None:
        self.target, self.conn, self.table, self.dataset = target, conn, table, dataset
        self.layout = layout

    async def add(self, rows: Sequence[Row]) -> None:
        await self.target._on(self.conn, _stage_rows, self.layout, rows)

    async def commit(self, seq: int, incarnation: str | None) -> None:
        await self.target._on(
            self.conn, self.target._swap, self.layout, self.table, self.dataset, seq, incarnation
        )


def _stage_rows(conn: Connection[Cursor], layout: Layout, rows: Sequence[Row]) -> None:
    values = [
        (rid, version, text, *layout.values(rid, json.loads(text))) for rid, version, text in rows
    ]
    with conn.cursor() as cur:
        cur.executemany(_insert(quote(STAGE), layout, "REPLACE"), values)


def _values(layout: Layout, record_id: str, version: int, data: Any) -> tuple[Any, ...]:
    return (record_id, version, jsonbody.dumps(data), *layout.values(record_id, data))


def _insert(name: str, layout: Layout, verb: str = "INSERT") -> str:
    columns = ["`id`", "`version`", "`data`", *(quote(c.name) for c in layout.columns)]
    marks = ", ".join(["%s"] * len(columns))
    return f"{verb} INTO {name} ({', '.join(columns)}) VALUES ({marks})"


def _upsert(name: str, layout: Layout) -> str:
    """Insert, or replace a row only with a newer version. MySQL applies the assignments
    in order, each seeing the ones before: ``version`` comes last, so every condition
    compares with the row's old version."""
    newer = "VALUES(`version`) > `version`"
    kept = ["`data`", *(quote(c.name) for c in layout.columns), "`version`"]
    sets = ", ".join(f"{c} = IF({newer}, VALUES({c}), {c})" for c in kept)
    return f"{_insert(name, layout)} ON DUPLICATE KEY UPDATE {sets}"


def _set_checkpoint(
    cur: Cursor,
    table: str,
    dataset: str,
    seq: int,
    incarnation: str | None = None,
    layout: str | None = None,
) -> None:
    """Move the checkpoint; a snapshot also sets its incarnation and its columns."""
    cur.execute(
        f"INSERT INTO {CHECKPOINTS} (table_name, dataset, seq, incarnation, layout) "
        "VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE dataset = VALUES(dataset), "
        "seq = VALUES(seq), synced_at = CURRENT_TIMESTAMP(6), "
        "incarnation = COALESCE(VALUES(incarnation), incarnation), "
        "layout = COALESCE(VALUES(layout), layout)",
        (table, dataset, seq, incarnation, layout),
    )


def _checkpoint(conn: Connection[Cursor], table: str) -> Checkpoint | None:
    with conn.cursor() as cur:
        cur.execute(f"SELECT seq, incarnation FROM {CHECKPOINTS} WHERE table_name = %s", (table,))
        row = cur.fetchone()
    return None if row is None else Checkpoint(int(row[0]), row[1])


class _transaction:
    """BEGIN ... COMMIT on a cursor, or ROLLBACK on any exception."""

    def __init__(self, conn: Connection[Cursor]) -> None:
        self.conn = conn

    def __enter__(self) -> Cursor:
        self.conn.begin()
        self.cursor = self.conn.cursor()
        return self.cursor

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.cursor.close()
        if kind is None:
            self.conn.commit()
        else:
            self.conn.rollback()


def _open(address: Address) -> Connection[Cursor]:
    try:
        conn = pymysql.connect(
            host=address.host,
            port=address.port,
            user=address.user,
            password=address.password,
            database=address.database,
            unix_socket=address.unix_socket,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=10,
            init_command=SESSION,
        )
    except pymysql.err.MySQLError as exc:  # its message names the host and user, no password
        where = address.unix_socket or f"{address.host}:{address.port}"
        raise TargetUnavailable(
            f"cannot use MySQL at {where}, database {address.database!r}: "
            f"{exc.args[-1] if exc.args else exc}"
        ) from None
    return conn


def _setup(conn: Connection[Cursor]) -> str:
    """Create the checkpoint table; the id column's collation (binary, no padding: ids
    that differ only in case or trailing spaces stay distinct)."""
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
        version = str(row[0]) if row else ""
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} ("
            "table_name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PRIMARY KEY, "
            "dataset VARCHAR(255) NOT NULL, seq BIGINT NOT NULL, "
            "synced_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), "
            "incarnation VARCHAR(255) NULL, layout LONGTEXT NULL"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        )
    return "utf8mb4_nopad_bin" if "mariadb" in version.lower() else "utf8mb4_0900_bin"


def _check_table_name(table: str) -> None:
    if len(table) > MAX_NAME:
        raise Unholdable(
            f"table name {table!r} is {len(table)} characters, MySQL allows {MAX_NAME} "
            "(a shorter --table-prefix?)"
        )
    if table.endswith(" ") or any(ord(ch) > 0xFFFF for ch in table):
        raise Unholdable(f"MySQL refuses the table name {table!r}")


def _close(conn: Connection[Cursor], done: asyncio.Future[Any] | None = None) -> None:
    if done is not None and not done.cancelled():
        done.exception()  # retrieved: it was reported where it happened, or not at all
    with suppress(pymysql.err.Error):
        conn.close()
