"""Versioned SQL migrations, applied in order under a PostgreSQL advisory lock.

Each file ``migrations/NNNN_name.sql`` runs in its own transaction. The lock is
taken on a dedicated connection, so replicas starting together queue up and
the later ones find nothing left to do. An applied file that changed on disk is
an error: migrations are append-only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

log = structlog.get_logger("entrepot.migrate")

MIGRATION_LOCK_KEY = 0x656E_7472_6570_6F74 & 0x7FFF_FFFF_FFFF_FFFF  # "entrepot"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("entrepot.store").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers must be 1..n without gaps, found {versions}")
    return found


class MigrationError(RuntimeError):
    pass


async def migrate(dsn: str, *, target: int | None = None) -> list[int]:
    """Bring the schema up to ``target`` (default: latest); return versions applied."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            return await _apply_pending(conn, target)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, target: int | None) -> list[int]:
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS entrepot_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            checksum text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    applied = {
        r["version"]: r["checksum"]
        for r in await conn.fetch("SELECT version, checksum FROM entrepot_migrations")
    }
    done: list[int] = []
    for migration in available_migrations():
        if target is not None and migration.version > target:
            break
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version} ({migration.name}) changed after it was applied"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO entrepot_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
        log.info("migration_applied", version=migration.version, name=migration.name)
        done.append(migration.version)
    return done


async def current_version(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('entrepot_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM entrepot_migrations"))
