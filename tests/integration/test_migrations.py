"""Migrations: from empty, from the previous release, concurrently, append-only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from entrepot.store.migrate import MigrationError, available_migrations, current_version, migrate

FreshDatabase = Callable[[], Awaitable[str]]


async def test_from_empty_database_to_latest(fresh_database: FreshDatabase) -> None:
    url = await fresh_database()
    applied = await migrate(url)
    assert applied == [m.version for m in available_migrations()]
    assert await migrate(url) == []
    conn = await asyncpg.connect(url)
    try:
        assert await current_version(conn) == len(available_migrations())
    finally:
        await conn.close()


async def test_from_previous_release_schema(fresh_database: FreshDatabase) -> None:
    latest = len(available_migrations())
    url = await fresh_database()
    await migrate(url, target=latest - 1)
    assert await migrate(url) == [latest]


async def test_replicas_starting_together_apply_each_migration_once(
    fresh_database: FreshDatabase,
) -> None:
    url = await fresh_database()
    results = await asyncio.gather(*(migrate(url) for _ in range(5)))
    applied = sorted(v for result in results for v in result)
    assert applied == [m.version for m in available_migrations()]


async def test_an_applied_migration_must_not_change(fresh_database: FreshDatabase) -> None:
    url = await fresh_database()
    await migrate(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE entrepot_migrations SET checksum = 'edited' WHERE version = 1")
    finally:
        await conn.close()
    with pytest.raises(MigrationError):
        await migrate(url)


async def test_apps_of_the_previous_release_land_on_the_default_plan(
    fresh_database: FreshDatabase,
) -> None:
    url = await fresh_database()
    await migrate(url, target=4)
    conn = await asyncpg.connect(url)
    try:
        org = await conn.fetchval("INSERT INTO orgs (name, title) VALUES ('o', 'O') RETURNING id")
        await conn.execute(
            "INSERT INTO apps (org_id, name, client_id, client_secret_digest, scopes) "
            "VALUES ($1, 'a', 'cid', '\\x00', '{}')",
            org,
        )
        await migrate(url)
        assert await conn.fetchval("SELECT plan FROM apps") == "default"
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute("UPDATE apps SET plan = 'missing'")
    finally:
        await conn.close()
