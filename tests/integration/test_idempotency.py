"""Idempotency-Key: replay, mismatch, in-flight conflicts (IETF draft semantics)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx

from entrepot.records.idempotency import LOCK_NAMESPACE
from tests.factories import make_dataset
from tests.waiting import until

WIDGET = {"sku": "w-1", "name": "Widget", "price": 9.5}
# A backend of this database that holds an idempotency key's advisory lock (two-key
# form: classid = namespace, objsubid = 2) while it waits on a lock the given backend holds.
KEY_HELD_AND_BLOCKED = """
SELECT count(*) FROM pg_locks l
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
  AND l.classid::bigint = $1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND $2::int = ANY(pg_blocking_pids(l.pid))
"""


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def test_repeat_replays_first_response(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client))["name"]
    headers = key()
    first = await client.post(f"/v1/datasets/{ds}/records", json=WIDGET, headers=headers)
    second = await client.post(f"/v1/datasets/{ds}/records", json=WIDGET, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    listing = (await client.get(f"/v1/datasets/{ds}/records")).json()["data"]
    assert len(listing) == 1, "applied once"


async def test_same_key_different_body_is_422(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client))["name"]
    headers = key()
    await client.post(f"/v1/datasets/{ds}/records", json=WIDGET, headers=headers)
    other = await client.post(
        f"/v1/datasets/{ds}/records", json={**WIDGET, "price": 1}, headers=headers
    )
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"


async def test_updates_and_deletes_apply_once(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    url = f"/v1/datasets/{ds}/records/w-1"
    await client.put(url, json=WIDGET)
    patch_key = key()
    for _ in range(3):
        response = await client.patch(url, json={"price": 20}, headers=patch_key)
        assert response.json()["version"] == 2
    delete_key = key()
    assert (await client.delete(url, headers=delete_key)).status_code == 204
    assert (await client.delete(url, headers=delete_key)).status_code == 204
    assert (await client.delete(url)).status_code == 404


async def test_failed_request_is_not_remembered(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client))["name"]
    headers = key()
    bad = await client.post(f"/v1/datasets/{ds}/records", json={"sku": "x"}, headers=headers)
    assert bad.status_code == 422
    # Same key, same (bad) body: re-executed, same answer; nothing stored.
    again = await client.post(f"/v1/datasets/{ds}/records", json={"sku": "x"}, headers=headers)
    assert again.status_code == 422
    assert "Idempotent-Replayed" not in again.headers


async def test_concurrent_duplicate_while_first_in_flight_is_409(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ds = (await make_dataset(client))["name"]
    headers = key()
    blocker = await asyncpg.connect(database_url)
    try:
        # Hold the dataset's records as a schema change does, so the first request
        # stalls inside its transaction, after it has claimed the idempotency key.
        dataset_id = await blocker.fetchval("SELECT id FROM datasets WHERE name = $1", ds)
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(f"LOCK TABLE records_{dataset_id} IN SHARE MODE")
        first = asyncio.create_task(
            client.post(f"/v1/datasets/{ds}/records", json=WIDGET, headers=headers)
        )

        async def first_holds_the_key_and_waits_on_us() -> bool:
            return bool(await blocker.fetchval(KEY_HELD_AND_BLOCKED, LOCK_NAMESPACE, blocker_pid))

        blocker_pid = blocker.get_server_pid()
        await until(
            first_holds_the_key_and_waits_on_us,
            "the first request holding its idempotency key and waiting on the dataset's records",
        )
        assert not first.done()
        second = await client.post(f"/v1/datasets/{ds}/records", json=WIDGET, headers=headers)
        assert second.status_code == 409
        assert second.headers["Retry-After"] == "1"
        await tx.rollback()
        assert (await first).status_code == 201
    finally:
        await blocker.close()
    third = await client.post(f"/v1/datasets/{ds}/records", json=WIDGET, headers=headers)
    assert third.status_code == 201
    assert third.headers["Idempotent-Replayed"] == "true"


async def test_invalid_key_is_400(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client))["name"]
    response = await client.post(
        f"/v1/datasets/{ds}/records", json=WIDGET, headers={"Idempotency-Key": "x" * 300}
    )
    assert response.status_code == 400


async def test_keys_are_scoped_per_dataset_path(client: httpx.AsyncClient) -> None:
    one = (await make_dataset(client))["name"]
    two = (await make_dataset(client))["name"]
    headers = key()
    assert (
        await client.post(f"/v1/datasets/{one}/records", json=WIDGET, headers=headers)
    ).status_code == 201
    # Same key, same body, different target: a different request -> 422, not a replay.
    other = await client.post(f"/v1/datasets/{two}/records", json=WIDGET, headers=headers)
    assert other.status_code == 422
