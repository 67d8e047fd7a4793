"""The change feed: every acknowledged change, in commit order, resumable."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from unittest.mock import ANY

import asyncpg
import httpx
import orjson
from fastapi import FastAPI

from entrepot.changes import repository as changes_repo
from entrepot.changes.follow import Follower
from entrepot.changes.query import build_feed_sql
from entrepot.schema.record_schema import RecordSchema
from entrepot.store.sql import changes_table
from tests.factories import make_dataset
from tests.integration.edge_helpers import http_scope, request_until
from tests.integration.test_access_requests import eventually
from tests.waiting import until


async def feed(client: httpx.AsyncClient, ds: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/v1/datasets/{ds}/changes", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_write_appears_once_in_order(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    url = f"/v1/datasets/{ds}/records"
    await client.post(url, json={"sku": "a", "name": "A", "price": 1})
    await client.put(f"{url}/a", json={"sku": "a", "name": "A2", "price": 2})
    await client.patch(f"{url}/a", json={"price": 3})
    await client.delete(f"{url}/a")
    page = await feed(client, ds)
    assert [(c["seq"], c["op"], c["id"], c["version"]) for c in page["changes"]] == [
        (1, "upsert", "a", 1),
        (2, "upsert", "a", 2),
        (3, "upsert", "a", 3),
        (4, "delete", "a", 4),
    ]
    assert page["changes"][2]["data"] == {"sku": "a", "name": "A2", "price": 3}
    assert page["changes"][3]["data"] is None
    assert page["last_seq"] == 4
    assert (await feed(client, ds, after=2))["changes"][0]["seq"] == 3
    assert (await feed(client, ds, after=4)) == {"changes": [], "last_seq": 4, "incarnation": ANY}


async def test_failed_writes_leave_no_change(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    url = f"/v1/datasets/{ds}/records"
    assert (await client.post(url, json={"sku": "a"})).status_code == 422
    await client.post(url, json={"sku": "a", "name": "A", "price": 1})
    assert (await client.post(url, json={"sku": "a", "name": "A", "price": 1})).status_code == 409
    assert [c["seq"] for c in (await feed(client, ds))["changes"]] == [1]


async def test_bulk_import_emits_changes(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    body = "\n".join(f'{{"sku": "s{i}", "name": "n", "price": {i}}}' for i in range(5))
    response = await client.post(
        f"/v1/datasets/{ds}/import", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 200, response.text
    changes = (await feed(client, ds))["changes"]
    assert [c["id"] for c in changes] == [f"s{i}" for i in range(5)]
    assert [c["seq"] for c in changes] == [1, 2, 3, 4, 5]


async def test_long_poll_wakes_on_commit(client: httpx.AsyncClient, app: FastAPI) -> None:
    """A poll already waiting when the write commits answers with it, long before its wait.

    The write goes in only once the poll is seen waiting on the dataset (not after a
    guessed delay, which on a slow machine let the write land first and the poll
    answer without ever waiting). A poll whose wait runs out answers with the empty
    page it read before waiting, so the change in the answer shows it was woken.
    """
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    dataset_id = int((await feed(client, ds))["incarnation"])
    waiter = app.state.components.get(Follower).waiter
    wait = 60  # the longest a poll may ask for
    polling = asyncio.create_task(feed(client, ds, after=0, wait=wait))

    async def poll_is_waiting() -> bool:
        return bool(waiter.waiting(dataset_id))

    try:
        await until(poll_is_waiting, "the long poll waiting on the dataset")
        assert not polling.done()
        written = await client.post(
            f"/v1/datasets/{ds}/records", json={"sku": "x", "name": "X", "price": 1}
        )
        assert written.status_code == 201, written.text
        committed = time.monotonic()
        done, _ = await asyncio.wait({polling}, timeout=wait / 2)
        answered = time.monotonic()
        assert done, f"the poll was not woken by the commit ({answered - committed:.1f} s later)"
    finally:
        polling.cancel()  # a no-op once it has answered; else no poll outlives the test
    page = polling.result()
    assert [c["id"] for c in page["changes"]] == ["x"]
    assert answered - committed < 5, "woken, but not promptly"
    assert waiter.waiting(dataset_id) == 0


async def test_long_poll_times_out_empty(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client))["name"]
    started = time.monotonic()
    assert await feed(client, ds, wait=0.3) == {"changes": [], "last_seq": 0, "incarnation": ANY}
    assert 0.25 < time.monotonic() - started < 2


async def test_concurrent_writers_give_a_gapless_feed(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]

    async def writer(n: int) -> None:
        for i in range(15):
            sku = f"w{n}-{i % 4}"
            await client.put(
                f"/v1/datasets/{ds}/records/{sku}", json={"sku": sku, "name": "w", "price": i}
            )

    await asyncio.gather(*(writer(n) for n in range(8)))
    changes = (await feed(client, ds, limit=1000))["changes"]
    assert [c["seq"] for c in changes] == list(range(1, 121))
    final: dict[str, Any] = {}
    for c in changes:
        final[c["id"]] = c["data"]
    records = (await client.get(f"/v1/datasets/{ds}/records", params={"limit": 1000})).json()
    assert final == {r["id"]: r["data"] for r in records["data"]}


async def test_bad_parameters_are_400(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client))["name"]
    for params in ({"after": "-1"}, {"limit": "0"}, {"wait": "61"}, {"after": "x"}):
        response = await client.get(f"/v1/datasets/{ds}/changes", params=params)
        assert response.status_code == 400, params


async def test_export_says_where_the_feed_resumes(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    for i in range(3):
        await client.post(
            f"/v1/datasets/{ds}/records", json={"sku": f"s{i}", "name": "n", "price": i}
        )
    export = await client.get(f"/v1/datasets/{ds}/export")
    assert export.headers["X-Entrepot-Seq"] == "3"
    await client.post(f"/v1/datasets/{ds}/records", json={"sku": "late", "name": "n", "price": 9})
    after = int(export.headers["X-Entrepot-Seq"])
    assert [c["id"] for c in (await feed(client, ds, after=after))["changes"]] == ["late"]


async def test_imports_and_single_writes_do_not_deadlock(client: httpx.AsyncClient) -> None:
    """An upsert import spanning batches runs beside single writes to the same records."""
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    keys = [f"k{i}" for i in range(30)]
    for sku in keys:
        await client.put(
            f"/v1/datasets/{ds}/records/{sku}", json={"sku": sku, "name": "n", "price": 0}
        )
    lines = "\n".join(
        f'{{"sku": "{keys[i % 30]}", "name": "import", "price": {i}}}' for i in range(3000)
    )

    async def single_writes() -> list[int]:
        statuses = []
        for round_ in range(5):
            for sku in keys[::3]:
                response = await client.patch(
                    f"/v1/datasets/{ds}/records/{sku}", json={"price": round_}
                )
                statuses.append(response.status_code)
        return statuses

    imported, statuses = await asyncio.gather(
        client.post(
            f"/v1/datasets/{ds}/import",
            params={"mode": "upsert"},
            content=lines,
            headers={"Content-Type": "application/x-ndjson"},
        ),
        single_writes(),
    )
    assert imported.status_code == 200, imported.text
    assert set(statuses) == {200}
    changes = (await feed(client, ds, limit=1000))["changes"]
    assert [c["seq"] for c in changes] == list(range(1, len(changes) + 1))
    final: dict[str, Any] = {}
    for change in changes:
        final[change["id"]] = (change["version"], change["data"])
    records = (await client.get(f"/v1/datasets/{ds}/records", params={"limit": 1000})).json()
    assert final == {r["id"]: (r["version"], r["data"]) for r in records["data"]}


async def test_a_position_from_an_earlier_life_of_the_dataset_is_gone(
    client: httpx.AsyncClient,
) -> None:
    """Deleted and created again under its name, a dataset's feed counts from 1 again:
    an old position is 410 (resnapshot), never an empty page that looks caught up."""
    created = await make_dataset(client, primary_key="sku")
    ds, org = created["name"], created["org"]
    url = f"/v1/datasets/{ds}/records"
    for sku in "abcde":
        assert (
            await client.post(url, json={"sku": sku, "name": sku, "price": 1})
        ).status_code == 201
    old = await feed(client, ds)
    assert old["last_seq"] == 5
    export = await client.get(f"/v1/datasets/{ds}/export")
    assert export.headers["X-Entrepot-Seq"] == "5"
    assert export.headers["X-Entrepot-Incarnation"] == old["incarnation"]

    assert (await client.delete(f"/v1/datasets/{ds}")).status_code == 204
    await make_dataset(client, org, name=ds, primary_key="sku")
    assert (await client.post(url, json={"sku": "z", "name": "z", "price": 1})).status_code == 201
    new = await feed(client, ds)
    assert new["incarnation"] != old["incarnation"]
    assert [c["id"] for c in new["changes"]] == ["z"]

    ahead = await client.get(f"/v1/datasets/{ds}/changes", params={"after": 5})
    assert ahead.status_code == 410, ahead.text
    assert ahead.headers["content-type"].startswith("application/problem+json")
    assert ahead.json()["reason"] == "ahead"
    assert ahead.json()["last_seq"] == 1
    assert ahead.json()["incarnation"] == new["incarnation"]
    assert "export" in ahead.json()["detail"]

    # Even where the position exists in the new life, the old incarnation gives it away.
    stale = await client.get(
        f"/v1/datasets/{ds}/changes", params={"after": 0, "incarnation": old["incarnation"]}
    )
    assert stale.status_code == 410, stale.text
    assert stale.json()["reason"] == "incarnation"
    # A stream says so in the stream, where an EventSource can read it, and ends.
    streamed = await client.get(
        f"/v1/datasets/{ds}/changes",
        params={"after": 0, "incarnation": old["incarnation"]},
        headers={"Accept": "text/event-stream"},
    )
    assert streamed.status_code == 200
    gone = streamed.text.split("event: gone\ndata: ", 1)[1].split("\n", 1)[0]
    assert '"reason":"incarnation"' in gone
    assert "event: change" not in streamed.text
    current = await feed(client, ds, after=0, incarnation=new["incarnation"])
    assert current["changes"] == new["changes"]
    # A long poll binds to the life it started in.
    waited = await feed(client, ds, after=1, wait=0.1, incarnation=new["incarnation"])
    assert waited == {"changes": [], "last_seq": 1, "incarnation": new["incarnation"]}


async def test_a_long_poll_is_released_the_moment_its_client_goes_away(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    created = await make_dataset(client)
    ds = created["name"]
    dataset_id = int((await feed(client, ds))["incarnation"])
    waiter = app.state.components.get(Follower).waiter
    gone = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = http_scope(
        "GET",
        f"/v1/datasets/{ds}/changes",
        [("authorization", client.headers["authorization"])],
        b"wait=30",
        spec_version="2.3",
    )
    polling = asyncio.create_task(app(scope, request_until(gone), send))

    async def poll_is_waiting() -> bool:
        return bool(waiter.waiting(dataset_id))

    await eventually(poll_is_waiting, within=5)
    gone.set()
    async with asyncio.timeout(2):  # not the 30 s it asked to wait
        await polling
    assert waiter.waiting(dataset_id) == 0


# --- one partition per dataset: every statement on the log reads only its own ---------


def _relations(plan: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(plan["Relation Name"])
        for value in plan.values():
            found |= _relations(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= _relations(value)
    return found


def _literal(value: Any) -> str:
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(v) for v in value) + "]::bigint[]"
    return repr(value)


async def test_every_statement_on_the_log_reads_only_its_datasets_partitions(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The feed always names its dataset's partition of ``changes``, so no statement
    opens (or locks) every dataset's log: not as planned for its values, and not as a
    generic plan either (PostgreSQL caches those, and locks every partition a generic
    plan on the parent could touch before it prunes)."""
    ids = []
    for _ in range(3):
        ds = (await make_dataset(client, primary_key="sku"))["name"]
        url = f"/v1/datasets/{ds}/records"
        created = await client.post(url, json={"sku": "a", "name": "A", "price": 1})
        assert created.status_code == 201
        pool = app.state.components.get(asyncpg.Pool)
        ids.append(await pool.fetchval("SELECT id FROM datasets WHERE name = $1", ds))
    mine = ids[0]
    schema = RecordSchema.compile({"type": "object"})
    feed_sql, feed_args = build_feed_sql(mine, 0, 10, schema, ())
    statements = {
        "sequence": (changes_repo.sequence_sql(mine), [mine]),
        "feed page": (feed_sql, feed_args),
        "changed since": (changes_repo.changed_since_sql(mine), [mine, 0]),
        "compaction target": (changes_repo.compaction_target_sql(mine), [mine, 3600.0]),
        "compaction": (changes_repo.compact_sql(mine), [mine, 0, 10]),
        "pending": (changes_repo.pending_sql([mine]), []),
    }
    pool = app.state.components.get(asyncpg.Pool)
    async with pool.acquire() as conn, conn.transaction():
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
            for n, (name, (sql, args)) in enumerate(statements.items()):
                await conn.execute(f"PREPARE probe_{mode}_{n} AS {sql}")
                given = f"({', '.join(_literal(a) for a in args)})" if args else ""
                plan = orjson.loads(
                    await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE probe_{mode}_{n}{given}")
                )
                await conn.execute(f"DEALLOCATE probe_{mode}_{n}")
                logs = {r for r in _relations(plan) if r.startswith("changes")}
                assert logs == {changes_table(mine)}, (mode, name, logs)
        plan = orjson.loads(
            await conn.fetchval(f"EXPLAIN (FORMAT JSON) {changes_repo.pending_sql(ids)}")
        )
        assert {r for r in _relations(plan) if r.startswith("changes_")} == {
            changes_table(i) for i in ids
        }
