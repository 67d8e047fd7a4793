"""A write racing a schema change or a deletion is judged by what committed first.

Writers hold ``ROW EXCLUSIVE`` on their dataset's records partition, as every
write does; a schema change takes ``SHARE`` on it and a deletion ``ACCESS
EXCLUSIVE``, each before the dataset row. Each test holds the partition as an
in-flight write would, queues the change behind it and a write behind the
change (seen waiting in ``pg_locks``, not guessed with sleeps), then lets the
first write commit: the change commits, and the queued write must be judged by
the new state, never stored against the old one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from entrepot.catalog import repository as catalog_repo
from tests.factories import make_dataset
from tests.waiting import until

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"sku": {"type": "string"}, "note": {"type": "string"}},
    "required": ["sku"],
}
STRICTER: dict[str, Any] = {
    **SCHEMA,
    "properties": {**SCHEMA["properties"], "note": {"type": "string", "maxLength": 10}},
}
LONG_NOTE = "x" * 50  # valid before the change, refused after it


async def _table(database_url: str, dataset: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        dataset_id: int = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", dataset)
    finally:
        await conn.close()
    return f"records_{dataset_id}"


@asynccontextmanager
async def an_inflight_write(database_url: str, table: str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction holding the partition as a write does, until the block ends."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")
            yield conn
    finally:
        await conn.close()


async def waiting_for(database_url: str, table: str, count: int) -> bool:
    """Whether ``count`` sessions wait for a lock on ``table``."""
    conn = await asyncpg.connect(database_url)
    try:
        waiting: int = await conn.fetchval(
            "SELECT count(DISTINCT pid) FROM pg_locks WHERE relation = $1::regclass "
            "AND NOT granted",
            table,
        )
    finally:
        await conn.close()
    return waiting >= count


async def queued_behind(
    database_url: str,
    table: str,
    change: Coroutine[Any, Any, httpx.Response],
    write: Callable[[], Coroutine[Any, Any, httpx.Response]],
) -> tuple[httpx.Response, httpx.Response]:
    """``change`` queued behind an in-flight write, then ``write()`` behind ``change``
    (each seen waiting in pg_locks); the in-flight write commits; both answers."""
    async with an_inflight_write(database_url, table):
        changing = asyncio.create_task(change)
        await until(lambda: waiting_for(database_url, table, 1), "the change waits")
        writing = asyncio.create_task(write())
        await until(lambda: waiting_for(database_url, table, 2), "the write waits behind it")
        assert not changing.done()
        assert not writing.done()
    return await changing, await writing


async def test_a_write_queued_behind_a_schema_change_is_judged_by_the_new_schema(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ds = (await make_dataset(client, primary_key="sku", schema=SCHEMA))["name"]
    changed, written = await queued_behind(
        database_url,
        await _table(database_url, ds),
        client.patch(f"/v1/datasets/{ds}", json={"schema": STRICTER}),
        lambda: client.put(
            f"/v1/datasets/{ds}/records/late", json={"sku": "late", "note": LONG_NOTE}
        ),
    )

    assert changed.status_code == 200, changed.text
    assert changed.json()["schema_version"] == 2
    assert written.status_code == 422, written.text
    assert written.json()["errors"][0]["path"] == "/note"
    assert (await client.get(f"/v1/datasets/{ds}/records/late")).status_code == 404


async def test_a_conditional_write_queued_behind_a_schema_change_is_judged_by_it_too(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """If-Match writes lock the dataset before reading the record (more than one
    statement): the lock, too, waits for the change and then reads its schema."""
    ds = (await make_dataset(client, primary_key="sku", schema=SCHEMA))["name"]
    created = await client.put(f"/v1/datasets/{ds}/records/a", json={"sku": "a", "note": "ok"})
    assert created.status_code == 201, created.text
    changed, written = await queued_behind(
        database_url,
        await _table(database_url, ds),
        client.patch(f"/v1/datasets/{ds}", json={"schema": STRICTER}),
        lambda: client.patch(
            f"/v1/datasets/{ds}/records/a",
            json={"note": LONG_NOTE},
            headers={"If-Match": created.headers["etag"]},
        ),
    )

    assert changed.status_code == 200, changed.text
    assert written.status_code == 422, written.text
    kept = await client.get(f"/v1/datasets/{ds}/records/a")
    assert kept.json()["data"] == {"sku": "a", "note": "ok"}


async def test_a_write_queued_behind_a_deletion_finds_the_dataset_gone(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ds = (await make_dataset(client, primary_key="sku", schema=SCHEMA))["name"]
    deleted, written = await queued_behind(
        database_url,
        await _table(database_url, ds),
        client.delete(f"/v1/datasets/{ds}"),
        lambda: client.put(f"/v1/datasets/{ds}/records/late", json={"sku": "late"}),
    )

    assert deleted.status_code == 204, deleted.text
    assert written.status_code == 404, written.text
    assert written.json()["type"].endswith("/not-found")


class _RolledBack(Exception):
    pass


async def test_creating_a_dataset_holds_up_no_other_datasets_reads_or_writes(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """A dataset's partitions are attached, not created as partitions: until its creation
    commits it holds no lock that another dataset's first read or write must wait for."""
    ds = (await make_dataset(client, primary_key="sku", schema=SCHEMA))["name"]
    conn = await asyncpg.connect(database_url)
    try:
        org_id = await conn.fetchval("SELECT org_id FROM datasets WHERE name = $1", ds)
        async with conn.transaction():
            await catalog_repo.insert_dataset(
                conn,
                {
                    "name": f"{ds}-new",
                    "org_id": org_id,
                    "title": "New",
                    "description": "",
                    "schema": '{"type": "object"}',
                    "primary_key": None,
                    "visibility": "restricted",
                    "indexes": [],
                    "tags": [],
                    "require_if_match": False,
                    "auto_approve": False,
                    "license": None,
                    "license_url": None,
                    "contact": None,
                },
            )
            written = await asyncio.wait_for(
                client.put(f"/v1/datasets/{ds}/records/a", json={"sku": "a"}), timeout=30
            )
            read = await asyncio.wait_for(client.get(f"/v1/datasets/{ds}/records/a"), timeout=30)
            raise _RolledBack  # the creation never commits
    except _RolledBack:
        pass
    finally:
        await conn.close()
    assert written.status_code == 201, written.text
    assert read.status_code == 200, read.text
