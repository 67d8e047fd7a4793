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


FOREIGN_KEYS_WITHOUT_INDEX = """
SELECT c.conrelid::regclass::text AS tab, c.conname,
       array_agg(a.attname ORDER BY k.ord) AS columns
FROM pg_constraint c
CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
  AND NOT EXISTS (
      SELECT 1 FROM pg_index i
      WHERE i.indrelid = c.conrelid AND i.indpred IS NULL
        AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] @> c.conkey
        AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] <@ c.conkey)
GROUP BY c.conrelid, c.conname
ORDER BY 1, 2
"""


async def test_every_foreign_key_is_backed_by_an_index(database_url: str) -> None:
    """Deleting a dataset, an app or a key finds the rows that reference it by index:
    a foreign key without one makes every such delete scan the referencing table."""
    conn = await asyncpg.connect(database_url)
    try:
        missing = [dict(r) for r in await conn.fetch(FOREIGN_KEYS_WITHOUT_INDEX)]
    finally:
        await conn.close()
    assert missing == []


async def test_changes_of_the_previous_release_learn_their_previous_state(
    fresh_database: FreshDatabase,
) -> None:
    """Migration 6 fills each old change's previous state from the change before it;
    where that one was compacted away, the change says its previous state is unknown."""
    url = await fresh_database()
    await migrate(url, target=5)
    conn = await asyncpg.connect(url)
    try:
        org = await conn.fetchval("INSERT INTO orgs (name, title) VALUES ('o', 'O') RETURNING id")
        dataset = await conn.fetchval(
            "INSERT INTO datasets (name, org_id, title, schema, visibility) "
            "VALUES ('d', $1, 'D', '{\"type\": \"object\"}', 'public') RETURNING id",
            org,
        )
        await conn.executemany(
            "INSERT INTO changes (dataset_id, seq, op, record_id, version, data) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
            [
                (dataset, 1, "upsert", "a", 1, '{"n": 1}'),
                (dataset, 2, "upsert", "a", 2, '{"n": 2}'),
                (dataset, 3, "delete", "a", 3, None),
                (dataset, 4, "upsert", "a", 1, '{"n": 4}'),  # created again
                (dataset, 5, "upsert", "b", 7, '{"n": 5}'),  # its earlier changes compacted
            ],
        )
        await migrate(url)
        rows = await conn.fetch(
            "SELECT seq, prev::text, prev_known FROM changes WHERE dataset_id = $1 ORDER BY seq",
            dataset,
        )
    finally:
        await conn.close()
    assert [(r["seq"], r["prev"], r["prev_known"]) for r in rows] == [
        (1, None, True),
        (2, '{"n": 1}', True),
        (3, '{"n": 2}', True),
        (4, None, True),
        (5, None, False),
    ]
