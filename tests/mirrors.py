"""Where a test's `entrepot sync` mirror lives, and what it holds, for every target kind.

``mirror`` is parametrized over SQLite, PostgreSQL and MySQL (a real MariaDB, Debian's
mariadb-server): a test that takes it runs once per target with the same assertions.
Each MySQL case gets a database of its own, dropped after; without a MariaDB answering
(at ``ENTREPOT_TEST_MYSQL_URL``, else 127.0.0.1:3306 as root) those cases are skipped
naming the package, and fail in CI, which must run one. A mirror's state is always
read on a connection of its own, so it is what was committed.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pymysql
import pytest

from tests.conftest import IN_CI

LOCAL_MYSQL = "mysql://root@127.0.0.1:3306"
KINDS = ("sqlite", "postgresql", "mysql")
Rows = dict[str, tuple[int, Any]]


def mysql_connect(url: str, database: str | None = None) -> pymysql.connections.Connection[Any]:
    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=database or (parts.path.lstrip("/") or None),
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=3,
    )


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """The MariaDB (or MySQL) server URL, without a database."""
    given = os.environ.get("ENTREPOT_TEST_MYSQL_URL")
    url = given or LOCAL_MYSQL
    try:
        mysql_connect(url).close()
    except pymysql.err.MySQLError as exc:
        reason = (
            f"no MariaDB answers at {urlsplit(url).netloc} ({exc.args[-1]}): install and "
            "start MariaDB (Debian package mariadb-server)"
        )
        if IN_CI or given:
            pytest.fail(f"CI is set but {reason}" if IN_CI else reason)
        pytest.skip(reason)
    return url


@dataclass(frozen=True)
class Mirror:
    """One target: the ``--to`` URL, and how to read it back."""

    kind: str
    to: str

    async def state(self, table: str) -> tuple[Rows, int | None]:
        """Rows ``{id: (version, data)}`` and the table's checkpoint seq, as committed."""
        if self.kind == "sqlite":
            return self._sqlite(table)
        if self.kind == "postgresql":
            return await self._postgresql(table)
        return self._mysql(table)

    def _sqlite(self, table: str) -> tuple[Rows, int | None]:
        import sqlite3

        db = sqlite3.connect(self.to.removeprefix("sqlite:///"))
        try:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            found = db.execute(f'SELECT id, version, data FROM "{table}"') if exists else []
            rows = {rid: (version, json.loads(data)) for rid, version, data in found}
            cp = db.execute(
                "SELECT seq FROM entrepot_sync_checkpoints WHERE table_name = ?", (table,)
            ).fetchone()
        except sqlite3.OperationalError:  # no checkpoint table yet
            return {}, None
        finally:
            db.close()
        return rows, cp[0] if cp else None

    async def _postgresql(self, table: str) -> tuple[Rows, int | None]:
        conn = await asyncpg.connect(self.to)
        try:
            if await conn.fetchval("SELECT to_regclass($1)", f'"{table}"') is None:
                return {}, None
            found = await conn.fetch(f'SELECT id, version, data::text FROM "{table}"')
            seq = await conn.fetchval(
                "SELECT seq FROM entrepot_sync_checkpoints WHERE table_name = $1", table
            )
        finally:
            await conn.close()
        return {r["id"]: (r["version"], json.loads(r["data"])) for r in found}, seq

    def _mysql(self, table: str) -> tuple[Rows, int | None]:
        conn = mysql_connect(self.to)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW TABLES")
                tables = {row[0] for row in cur.fetchall()}
                rows: Rows = {}
                if table in tables:
                    cur.execute(f"SELECT id, version, data FROM `{table}`")
                    rows = {rid: (version, json.loads(data)) for rid, version, data in cur}
                seq = None
                if "entrepot_sync_checkpoints" in tables:
                    cur.execute(
                        "SELECT seq FROM entrepot_sync_checkpoints WHERE table_name = %s",
                        (table,),
                    )
                    found = cur.fetchone()
                    seq = found[0] if found else None
        finally:
            conn.close()
        return rows, seq

    def typed(self, table: str) -> dict[str, dict[str, Any]]:
        """A MySQL mirror's rows as ``{id: {column: value}}``, every column but data."""
        conn = mysql_connect(self.to)
        try:
            with conn.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute(f"SELECT * FROM `{table}`")
                return {row["id"]: _without(row, "id", "data") for row in cur}
        finally:
            conn.close()

    def columns(self, table: str) -> dict[str, str]:
        """A MySQL table's columns and their types, as the server describes them."""
        conn = mysql_connect(self.to)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT column_name, column_type FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND table_name = %s "
                    "ORDER BY ordinal_position",
                    (table,),
                )
                return {name: kind for name, kind in cur.fetchall()}
        finally:
            conn.close()


def _without(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}


@pytest.fixture(params=KINDS)
def mirror(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mirror]:
    """An empty mirror location of each kind in turn (not async: the PostgreSQL and
    MariaDB it needs are asked for only by their own cases, outside the event loop)."""
    kind = request.param
    if kind == "sqlite":
        yield Mirror(kind, f"sqlite:///{tmp_path / 'mirror.db'}")
    elif kind == "postgresql":
        fresh_database = request.getfixturevalue("fresh_database")
        yield Mirror(kind, asyncio.run(fresh_database("entrepot_mirror")))
    else:
        server = request.getfixturevalue("mysql_server")
        name = f"entrepot_mirror_{uuid.uuid4().hex[:12]}"
        admin = mysql_connect(server)
        try:
            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            yield Mirror(kind, f"{server}/{name}")
        finally:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            admin.close()
