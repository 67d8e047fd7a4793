"""Retention: old changes are compacted away; a cursor behind the horizon gets 410.

Changes are aged by moving their ``at`` into the past, then compaction runs as
the housekeeping loop runs it. A follower that was keeping up never notices;
one that fell behind the horizon is told (410, with ``min_seq`` and
``last_seq``) to re-read the dataset by export, whose ``X-Entrepot-Seq`` is the
exact feed position to resume from.
"""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import ANY

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from entrepot.changes import repository as changes_repo
from entrepot.changes.compaction import compact_all, compact_dataset
from tests.factories import make_dataset

WEEK = 168 * 3600


@pytest.fixture
def pool(app: FastAPI) -> asyncpg.Pool:
    pool: asyncpg.Pool = app.state.components.get(asyncpg.Pool)
    return pool


async def dataset_with_changes(
    client: httpx.AsyncClient, pool: asyncpg.Pool, writes: int
) -> tuple[str, int]:
    """A dataset whose feed holds ``writes`` changes: creates, updates and deletes."""
    name = str((await make_dataset(client, primary_key="sku"))["name"])
    url = f"/v1/datasets/{name}/records"
    for i in range(writes):
        sku = f"s{i % 4}"
        if i % 5 == 4:  # s0, s1, ... each exists when its turn to be deleted comes
            response = await client.delete(f"{url}/{sku}")
        else:
            response = await client.put(f"{url}/{sku}", json={"sku": sku, "name": "n", "price": i})
        assert response.status_code in (200, 201, 204), response.text
    ds_id: int = await pool.fetchval("SELECT id FROM datasets WHERE name = $1", name)
    return name, ds_id


async def age(pool: asyncpg.Pool, ds_id: int, upto_seq: int, interval: str = "8 days") -> None:
    await changes_repo.sequence(pool, ds_id)  # acknowledged writes are numbered by readers
    await pool.execute(
        "UPDATE changes SET at = now() - $3::text::interval WHERE dataset_id = $1 AND seq <= $2",
        ds_id,
        upto_seq,
        interval,
    )


async def changes(client: httpx.AsyncClient, ds: str, after: int, **params: Any) -> httpx.Response:
    return await client.get(f"/v1/datasets/{ds}/changes", params={"after": after, **params})


async def horizon(pool: asyncpg.Pool, ds_id: int) -> tuple[int, int]:
    head = await changes_repo.head(pool, ds_id)
    assert head is not None
    return int(head["min_seq"]), int(head["last_seq"])


async def kept_seqs(pool: asyncpg.Pool, ds_id: int) -> list[int]:
    rows = await pool.fetch("SELECT seq FROM changes WHERE dataset_id = $1 ORDER BY seq", ds_id)
    return [r["seq"] for r in rows]


async def test_expired_changes_are_dropped_and_old_cursors_get_410(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    ds, ds_id = await dataset_with_changes(client, pool, 10)
    await age(pool, ds_id, 6)

    assert await compact_dataset(pool, ds_id, WEEK) == 6
    assert await horizon(pool, ds_id) == (6, 10)
    assert await kept_seqs(pool, ds_id) == [7, 8, 9, 10]

    for after in (0, 3, 5):
        gone = await changes(client, ds, after)
        assert gone.status_code == 410, gone.text
        assert gone.headers["content-type"].startswith("application/problem+json")
        problem = gone.json()
        assert problem["type"].endswith("/gone")
        assert problem["min_seq"] == 6
        assert problem["last_seq"] == 10
        assert "export" in problem["detail"]

    at_horizon = await changes(client, ds, 6)
    assert at_horizon.status_code == 200, at_horizon.text
    assert [c["seq"] for c in at_horizon.json()["changes"]] == [7, 8, 9, 10]
    assert [c["seq"] for c in (await changes(client, ds, 8)).json()["changes"]] == [9, 10]
    assert (await changes(client, ds, 10)).json() == {
        "changes": [],
        "last_seq": 10,
        "incarnation": ANY,
    }

    # Nothing more has expired: compacting again changes nothing.
    assert await compact_dataset(pool, ds_id, WEEK) == 0
    assert await horizon(pool, ds_id) == (6, 10)


async def test_changes_within_retention_are_kept(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    ds, ds_id = await dataset_with_changes(client, pool, 6)
    await age(pool, ds_id, 6, "100 hours")  # old, but younger than a week
    assert await compact_dataset(pool, ds_id, WEEK) == 0
    assert await horizon(pool, ds_id) == (0, 6)
    assert (await changes(client, ds, 0)).status_code == 200
    # With a shorter retention they go.
    assert await compact_dataset(pool, ds_id, 99 * 3600) == 5
    assert (await changes(client, ds, 0)).status_code == 410


async def test_the_newest_change_is_never_dropped(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    ds, ds_id = await dataset_with_changes(client, pool, 5)
    await age(pool, ds_id, 5)
    assert await compact_dataset(pool, ds_id, WEEK) == 4
    assert await horizon(pool, ds_id) == (4, 5)
    assert await kept_seqs(pool, ds_id) == [5]
    newest = (await changes(client, ds, 4)).json()
    assert [c["seq"] for c in newest["changes"]] == [5]
    assert newest["last_seq"] == 5
    # Ever again: the head stays readable however often compaction runs.
    assert await compact_dataset(pool, ds_id, WEEK) == 0
    assert await kept_seqs(pool, ds_id) == [5]


async def test_compaction_works_in_batches_moving_the_horizon_each_time(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    _, ds_id = await dataset_with_changes(client, pool, 12)
    await age(pool, ds_id, 12)
    assert await compact_dataset(pool, ds_id, WEEK, batch=3) == 11
    assert await horizon(pool, ds_id) == (11, 12)
    assert await kept_seqs(pool, ds_id) == [12]

    # One batch at a time: each leaves the log exactly the seqs above the horizon.
    _, ds_id = await dataset_with_changes(client, pool, 12)
    await age(pool, ds_id, 12)
    async with pool.acquire() as conn:
        for expected_min in (3, 6, 9, 11, 11):
            async with conn.transaction():
                await changes_repo.compact(conn, ds_id, 11, 3)
            min_seq, _ = await horizon(pool, ds_id)
            assert min_seq == expected_min
            assert await kept_seqs(pool, ds_id) == list(range(min_seq + 1, 13))


async def test_only_one_compactor_works_on_a_dataset_at_a_time(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    _, ds_id = await dataset_with_changes(client, pool, 8)
    await age(pool, ds_id, 8)
    async with pool.acquire() as other_replica, other_replica.transaction():
        assert await changes_repo.try_compaction_lock(other_replica, ds_id)
        assert await compact_dataset(pool, ds_id, WEEK) == 0, "skips a dataset in work"
        assert await horizon(pool, ds_id) == (0, 8)
    assert await compact_dataset(pool, ds_id, WEEK) == 7


async def test_compact_all_covers_every_dataset_with_expired_changes(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    _, old_id = await dataset_with_changes(client, pool, 4)
    _, fresh_id = await dataset_with_changes(client, pool, 4)
    await age(pool, old_id, 4)
    assert await compact_all(pool, WEEK) >= 3
    assert await horizon(pool, old_id) == (3, 4)
    assert await horizon(pool, fresh_id) == (0, 4)


async def test_a_long_poll_behind_the_horizon_is_410_at_once(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    ds, ds_id = await dataset_with_changes(client, pool, 4)
    await age(pool, ds_id, 4)
    await compact_dataset(pool, ds_id, WEEK)
    response = await changes(client, ds, 1, wait=5)
    assert response.status_code == 410
    assert (response.json()["min_seq"], response.json()["last_seq"]) == (3, 4)


async def test_export_then_feed_reproduces_the_dataset_after_a_410(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """A follower that fell behind re-snapshots by export and resumes exactly."""
    ds, ds_id = await dataset_with_changes(client, pool, 10)
    url = f"/v1/datasets/{ds}/records"
    follower_cursor = 2  # it read two changes, then went away for a long time
    await age(pool, ds_id, 10)
    await compact_dataset(pool, ds_id, WEEK)
    gone = await changes(client, ds, follower_cursor)
    assert gone.status_code == 410

    export = await client.get(f"/v1/datasets/{ds}/export", params={"format": "ndjson"})
    assert export.status_code == 200, export.text
    resume = int(export.headers["X-Entrepot-Seq"])
    assert resume == 10
    mirror = {r["sku"]: r for r in (json.loads(line) for line in export.text.split("\n") if line)}

    # Writes continue after the snapshot; the feed from `resume` brings exactly them.
    await client.put(f"{url}/s0", json={"sku": "s0", "name": "later", "price": 100})
    await client.put(f"{url}/s9", json={"sku": "s9", "name": "new", "price": 9})
    await client.delete(f"{url}/s2")
    page = (await changes(client, ds, resume)).json()
    assert [c["seq"] for c in page["changes"]] == [11, 12, 13]
    for change in page["changes"]:
        if change["op"] == "delete":
            mirror.pop(change["id"], None)
        else:
            mirror[change["id"]] = change["data"]

    listed = (await client.get(url, params={"limit": 1000})).json()["data"]
    assert mirror == {r["id"]: r["data"] for r in listed}
