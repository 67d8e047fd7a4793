"""Migrations: from empty, from the previous release, concurrently, append-only."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from entrepot.auth.bootstrap import bootstrap
from entrepot.settings import Settings
from entrepot.store.migrate import (
    LockWait,
    Migration,
    MigrationError,
    MigrationLockTimeout,
    available_migrations,
    current_version,
    migrate,
)
from tests.conftest import ADMIN_TOKEN, app_and_client

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


# --- migrations outside a transaction, and lock timeouts ------------------------------


def _chain_plus(sql: str) -> list[Migration]:
    """The packaged migrations and one more, numbered after them."""
    chain = available_migrations()
    return [*chain, Migration(len(chain) + 1, "extra", sql)]


async def _applied_versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT version FROM entrepot_migrations ORDER BY 1")
        return [r[0] for r in rows]
    finally:
        await conn.close()


ONLINE = """-- entrepot:no-transaction
CREATE TABLE IF NOT EXISTS online_things (id bigint PRIMARY KEY, label text);
-- concurrently: outside any transaction, as only this kind of file allows
CREATE INDEX CONCURRENTLY IF NOT EXISTS online_things_label_idx ON online_things (label);
"""


async def test_a_no_transaction_migration_runs_its_statements_outside_a_transaction(
    fresh_database: FreshDatabase,
) -> None:
    url = await fresh_database()
    chain = _chain_plus(ONLINE)
    assert not chain[-1].transactional
    assert all(m.transactional for m in chain[:-1])
    assert await migrate(url, migrations=chain) == [m.version for m in chain]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'online_things_label_idx'::regclass"
        )
    finally:
        await conn.close()
    assert await migrate(url, migrations=chain) == []


async def test_a_no_transaction_migration_that_fails_midway_is_not_recorded_and_runs_again(
    fresh_database: FreshDatabase,
) -> None:
    """Its first statements stay done; the version is recorded only once all succeeded,
    so the next run starts again from the top, and the file's idempotence carries it."""
    url = await fresh_database()
    chain = _chain_plus(
        """-- entrepot:no-transaction
CREATE TABLE IF NOT EXISTS online_things (id bigint PRIMARY KEY, label text);
-- one label per thing
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS online_things_label_key ON online_things (label);
"""
    )
    await migrate(url, migrations=chain[:-1])
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE online_things (id bigint PRIMARY KEY, label text);"
            "INSERT INTO online_things VALUES (1, 'same'), (2, 'same')"
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await migrate(url, migrations=chain)
        assert chain[-1].version not in await _applied_versions(url)
        # The failed build left no invalid index behind for IF NOT EXISTS to keep.
        assert await conn.fetchval("SELECT to_regclass('online_things_label_key')") is None

        await conn.execute("UPDATE online_things SET label = 'other' WHERE id = 2")
        assert await migrate(url, migrations=chain) == [chain[-1].version]
        assert await conn.fetchval(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'online_things_label_key'::regclass"
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE orgs ADD COLUMN motto text",
        "-- entrepot:no-transaction\nALTER TABLE orgs ADD COLUMN IF NOT EXISTS motto text",
    ],
    ids=["in-a-transaction", "no-transaction"],
)
async def test_a_migration_blocked_by_a_lock_times_out_and_retries_until_it_is_released(
    fresh_database: FreshDatabase, sql: str
) -> None:
    url = await fresh_database()
    chain = _chain_plus(sql)
    await migrate(url, migrations=chain[:-1])
    holder = await asyncpg.connect(url)
    timed_out: list[LockWait] = []
    retried = asyncio.Event()

    def on_lock_timeout(wait: LockWait) -> None:
        timed_out.append(wait)
        if len(timed_out) >= 2:
            retried.set()

    try:
        holding = holder.transaction()
        await holding.start()
        await holder.execute("SELECT count(*) FROM orgs")  # ACCESS SHARE, until rollback
        running = asyncio.create_task(
            migrate(
                url,
                migrations=chain,
                lock_timeout_ms=100,
                lock_attempts=1000,
                backoff_seconds=0.01,
                on_lock_timeout=on_lock_timeout,
            )
        )
        await asyncio.wait_for(retried.wait(), 60)
        assert not running.done()
        assert chain[-1].version not in await _applied_versions(url)
        # Queries on the table queue behind the waiting ALTER for one lock timeout at
        # most, not for as long as the holder holds on.
        reader = await asyncpg.connect(url)
        try:
            assert await asyncio.wait_for(reader.fetchval("SELECT count(*) FROM orgs"), 30) == 0
        finally:
            await reader.close()
        seen = [w for wait in timed_out for w in wait.waited_for]
        assert any(
            w["relation"] == "orgs"
            and w["mode"] == "AccessExclusiveLock"
            and [b["pid"] for b in w["blockers"]] == [holder.get_server_pid()]
            for w in seen
        ), timed_out
        assert all(w.version == chain[-1].version for w in timed_out)
        await holding.rollback()
        assert await asyncio.wait_for(running, 60) == [chain[-1].version]
    finally:
        await holder.close()
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'orgs' AND column_name = 'motto'"
        )
    finally:
        await conn.close()


async def test_a_migration_that_never_gets_its_lock_fails_saying_what_it_waited_for(
    fresh_database: FreshDatabase,
) -> None:
    url = await fresh_database()
    chain = _chain_plus("ALTER TABLE orgs ADD COLUMN motto text")
    await migrate(url, migrations=chain[:-1])
    holder = await asyncpg.connect(url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE orgs IN ACCESS SHARE MODE")
            with pytest.raises(MigrationLockTimeout, match="AccessExclusiveLock on orgs"):
                await migrate(
                    url, migrations=chain, lock_timeout_ms=200, lock_attempts=3, backoff_seconds=0
                )
    finally:
        await holder.close()
    assert chain[-1].version not in await _applied_versions(url)


# --- migration 7: partitioned logs, from the previous release with data in it ---------

CHANGE_ROWS = (
    "SELECT dataset_id, n, seq, op, record_id, version, data::text, at, prev::text, prev_known "
    "FROM changes ORDER BY dataset_id, n"
)
AUDIT_ROWS = (
    "SELECT id, at, actor, app_id, org_id, action, target, outcome, status, request_id, ip, "
    "details::text, target_org_id FROM audit_log ORDER BY id"
)


async def test_the_logs_of_the_previous_release_move_into_partitions(
    fresh_database: FreshDatabase,
) -> None:
    url = await fresh_database()
    await migrate(url, target=6)
    role = f"entrepot_test_reader_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(url)
    try:
        org = await conn.fetchval("INSERT INTO orgs (name, title) VALUES ('o', 'O') RETURNING id")
        ids = []
        for name in ("prices", "stock"):
            dataset = await conn.fetchval(
                "INSERT INTO datasets (name, org_id, title, schema, visibility) "
                "VALUES ($1, $2, 'D', '{\"type\": \"object\"}', 'public') RETURNING id",
                name,
                org,
            )
            await conn.execute(
                f"CREATE TABLE records_{dataset} PARTITION OF records FOR VALUES IN ({dataset})"
            )
            ids.append(dataset)
        prices, stock = ids
        await conn.executemany(
            "INSERT INTO changes (dataset_id, seq, op, record_id, version, data, prev, prev_known) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8)",
            [
                (prices, 1, "upsert", "a", 1, '{"n": 1}', None, True),
                (stock, 1, "upsert", "x", 1, '{"n": 10}', None, True),
                (prices, 2, "upsert", "a", 2, '{"n": 2}', '{"n": 1}', True),
                (prices, 3, "delete", "a", 3, None, '{"n": 2}', True),
                (stock, 2, "upsert", "y", 4, '{"n": 20}', None, False),
                (prices, None, "upsert", "b", 1, '{"n": 5}', None, True),  # pending
            ],
        )
        await conn.execute(
            "INSERT INTO feed_heads (dataset_id, last_seq) VALUES ($1, 3), ($2, 2)", prices, stock
        )
        await conn.execute(
            "INSERT INTO audit_log (at, actor, action, target, outcome, details) VALUES "
            "('2025-05-10T08:00:00Z', 'user:1', 'dataset.created', 'dataset:prices', "
            "'success', '{\"k\": 1}'), "
            "(now(), 'user:1', 'dataset.created', 'dataset:stock', 'success', '{}')"
        )
        await conn.execute(f"CREATE ROLE {role} NOLOGIN")
        await conn.execute(f"GRANT SELECT ON changes, audit_log TO {role}")
        changes_before = [tuple(r) for r in await conn.fetch(CHANGE_ROWS)]
        audit_before = [tuple(r) for r in await conn.fetch(AUDIT_ROWS)]

        assert (await migrate(url))[:2] == [7, 8]

        assert [tuple(r) for r in await conn.fetch(CHANGE_ROWS)] == changes_before
        assert [tuple(r) for r in await conn.fetch(AUDIT_ROWS)] == audit_before
        assert await conn.fetchval("SELECT to_regclass('changes_unpartitioned')") is None
        where = await conn.fetch(
            "SELECT DISTINCT dataset_id, tableoid::regclass::text AS part FROM changes ORDER BY 1"
        )
        assert [(r["dataset_id"], r["part"]) for r in where] == [
            (prices, f"changes_{prices}"),
            (stock, f"changes_{stock}"),
        ]
        months = await conn.fetch(
            "SELECT target, tableoid::regclass::text AS part FROM audit_log ORDER BY id"
        )
        current = await conn.fetchval(
            "SELECT 'audit_log_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')"
        )
        assert [(r["target"], r["part"]) for r in months] == [
            ("dataset:prices", "audit_log_p202505"),
            ("dataset:stock", current),
        ]
        for table in ("changes", "audit_log"):
            assert await conn.fetchval("SELECT has_table_privilege($1, $2, 'SELECT')", role, table)
        # Still append-only.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_log")

        # Numbering goes on after the copied rows.
        n = await conn.fetchval(
            "INSERT INTO changes (dataset_id, op, record_id, version, data) "
            "VALUES ($1, 'upsert', 'c', 1, '{}') RETURNING n",
            stock,
        )
        assert n > max(row[1] for row in changes_before)
        audit_id = await conn.fetchval(
            "INSERT INTO audit_log (actor, action, outcome) VALUES ('t', 't', 'success') "
            "RETURNING id"
        )
        assert audit_id > max(row[0] for row in audit_before)

        # A dataset created now gets its partition; deleting one queues its log.
        fresh = await conn.fetchval(
            "INSERT INTO datasets (name, org_id, title, schema, visibility) "
            "VALUES ('new', $1, 'D', '{\"type\": \"object\"}', 'public') RETURNING id",
            org,
        )
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_inherits "
            "WHERE inhparent = 'changes'::regclass AND inhrelid = $1::regclass",
            f"changes_{fresh}",
        )
        await conn.execute("DELETE FROM datasets WHERE id = $1", fresh)
        assert await conn.fetchval(
            "SELECT dataset_id FROM retired_change_logs WHERE dataset_id = $1", fresh
        )
    finally:
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE IF EXISTS {role}")
        await conn.close()

    # The feeds read on as before: the pending change is numbered after the others.
    await bootstrap(url, ADMIN_TOKEN)
    settings = Settings(database_url=url, bootstrap_token=ADMIN_TOKEN, log_level="warning")
    async with app_and_client(settings) as (_, client):
        page = (await client.get("/v1/datasets/prices/changes")).json()
        assert [(c["seq"], c["op"], c["id"]) for c in page["changes"]] == [
            (1, "upsert", "a"),
            (2, "upsert", "a"),
            (3, "delete", "a"),
            (4, "upsert", "b"),
        ]
        page = (await client.get("/v1/datasets/stock/changes", params={"after": 1})).json()
        assert [(c["seq"], c["id"]) for c in page["changes"]] == [(2, "y"), (3, "c")]


# --- migration 10: integer primary keys order as numbers ------------------------------


async def test_integer_keyed_datasets_of_the_previous_release_list_in_numeric_order(
    fresh_database: FreshDatabase,
) -> None:
    """Their partitions get the numeric id index and their field indexes break ties by
    it; text-keyed datasets are left as they were."""
    url = await fresh_database()
    await migrate(url, target=9)
    conn = await asyncpg.connect(url)
    integer_schema = (
        '{"type": "object", "properties": {"n": {"type": "integer"}, "g": {"type": "string"}}}'
    )
    text_schema = '{"type": "object", "properties": {"n": {"type": ["integer", "string"]}}}'
    try:
        org = await conn.fetchval("INSERT INTO orgs (name, title) VALUES ('o', 'O') RETURNING id")
        tables = {}
        for name, schema in (("ints", integer_schema), ("mixed", text_schema)):
            dataset = await conn.fetchval(
                "INSERT INTO datasets (name, org_id, title, schema, primary_key, visibility, "
                "indexes) VALUES ($1, $2, 'D', $3::jsonb, 'n', 'public', $4) RETURNING id",
                name,
                org,
                schema,
                ["g"] if name == "ints" else [],
            )
            table = tables[name] = f"records_{dataset}"
            await conn.execute(
                f"CREATE TABLE {table} PARTITION OF records FOR VALUES IN ({dataset})"
            )
            await conn.execute(f"INSERT INTO feed_heads (dataset_id) VALUES ({dataset})")
            for n in (1, 2, 10, 9, 100, -5):
                await conn.execute(
                    f"INSERT INTO {table} (dataset_id, id, version, data) "
                    "VALUES ($1, $2, 1, jsonb_build_object('n', $3::int, 'g', 'same'))",
                    dataset,
                    str(n),
                    n,
                )
        # The field index as the previous release built it: the text id breaks ties.
        await conn.execute(
            f"CREATE INDEX {tables['ints']}_f_0123456789ab ON {tables['ints']} "
            "((COALESCE(data -> 'g', 'null'::jsonb)), id)"
        )

        assert await migrate(url) == list(range(10, len(available_migrations()) + 1))

        indexes = dict(
            await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1",
                tables["ints"],
            )
        )
        assert f"{tables['ints']}_id_numeric" in indexes
        assert indexes[f"{tables['ints']}_f_0123456789ab"].endswith(", ((id)::numeric))")
        assert not await conn.fetchval(
            "SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexname LIKE '%numeric'",
            tables["mixed"],
        )
    finally:
        await conn.close()

    await bootstrap(url, ADMIN_TOKEN)
    settings = Settings(database_url=url, bootstrap_token=ADMIN_TOKEN, log_level="warning")
    async with app_and_client(settings) as (_, client):
        listed = (await client.get("/v1/datasets/ints/records")).json()["data"]
        assert [r["id"] for r in listed] == ["-5", "1", "2", "9", "10", "100"]
        by_group = (await client.get("/v1/datasets/ints/records?sort=g&limit=4")).json()
        assert [r["id"] for r in by_group["data"]] == ["-5", "1", "2", "9"]
        listed = (await client.get("/v1/datasets/mixed/records")).json()["data"]
        assert [r["id"] for r in listed] == ["-5", "1", "10", "100", "2", "9"]


# --- migration 11: schemas as declared ----------------------------------------------


async def test_schemas_of_the_previous_release_keep_their_documents(
    fresh_database: FreshDatabase,
) -> None:
    """Stored as jsonb, they lost their declared order already: they keep jsonb's, and
    the next declaration (a PATCH) is kept as written."""
    url = await fresh_database()
    await migrate(url, target=10)
    conn = await asyncpg.connect(url)
    declared = {
        "type": "object",
        "properties": {"code": {"type": "string"}, "zeta": {}, "alpha": {}, "b": {}},
    }
    try:
        org = await conn.fetchval("INSERT INTO orgs (name, title) VALUES ('o', 'O') RETURNING id")
        dataset = await conn.fetchval(
            "INSERT INTO datasets (name, org_id, title, schema, primary_key, visibility) "
            "VALUES ('d', $1, 'D', $2::jsonb, 'code', 'public') RETURNING id",
            org,
            json.dumps(declared),
        )
        await conn.execute(
            f"CREATE TABLE records_{dataset} PARTITION OF records FOR VALUES IN ({dataset})"
        )
        await conn.execute(f"INSERT INTO feed_heads (dataset_id) VALUES ({dataset})")
        before = await conn.fetchval("SELECT schema::text FROM datasets")

        assert await migrate(url) == list(range(11, len(available_migrations()) + 1))

        assert (
            await conn.fetchval(
                "SELECT atttypid::regtype::text FROM pg_attribute "
                "WHERE attrelid = 'datasets'::regclass AND attname = 'schema'"
            )
            == "json"
        )
        assert await conn.fetchval("SELECT schema::text FROM datasets") == before
    finally:
        await conn.close()

    await bootstrap(url, ADMIN_TOKEN)
    settings = Settings(database_url=url, bootstrap_token=ADMIN_TOKEN, log_level="warning")
    async with app_and_client(settings) as (_, client):
        shown = (await client.get("/v1/datasets/d")).json()
        assert list(shown["schema"]["properties"]) == ["b", "code", "zeta", "alpha"]
        patched = await client.patch("/v1/datasets/d", json={"schema": declared})
        assert list(patched.json()["schema"]["properties"]) == ["code", "zeta", "alpha", "b"]
        assert patched.json()["schema_version"] == 2


async def test_usage_and_datasets_of_the_previous_release_gain_their_new_columns(
    fresh_database: FreshDatabase,
) -> None:
    """Migrations 16 and 17: a dataset made before has no licence or contact; usage
    counted before is the no-dataset ('') share, and counts per dataset add beside it."""
    url = await fresh_database()
    await migrate(url, target=15)
    conn = await asyncpg.connect(url)
    try:
        org = await conn.fetchval("INSERT INTO orgs (name, title) VALUES ('o', 'O') RETURNING id")
        await conn.execute(
            "INSERT INTO datasets (name, org_id, title, schema, visibility) "
            "VALUES ('d', $1, 'D', '{\"type\": \"object\"}', 'public')",
            org,
        )
        app = await conn.fetchval(
            "INSERT INTO apps (org_id, name, client_id, client_secret_digest, scopes) "
            "VALUES ($1, 'a', 'cid', '\\x00', '{}') RETURNING id",
            org,
        )
        await conn.execute(
            "INSERT INTO usage_hourly (app_id, hour, endpoint_class, status, count) "
            "VALUES ($1, '2026-01-01T10:00:00Z', 'records.read', 200, 5)",
            app,
        )
        assert await migrate(url) == [16, 17]
        assert await conn.fetchrow("SELECT license, license_url, contact FROM datasets") == (
            None,
            None,
            None,
        )
        await conn.execute(
            "INSERT INTO usage_hourly (app_id, hour, endpoint_class, status, dataset, count) "
            "VALUES ($1, '2026-01-01T10:00:00Z', 'records.read', 200, 'd', 2)",
            app,
        )
        rows = await conn.fetch("SELECT dataset, count FROM usage_hourly ORDER BY dataset")
        assert [tuple(r) for r in rows] == [("", 5), ("d", 2)]
    finally:
        await conn.close()
