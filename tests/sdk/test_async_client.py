"""The AsyncClient: the same behaviour as Client (it is generated from it), awaited."""

from __future__ import annotations

import asyncio

import pytest

from entrepot.client import AsyncClient, Checkpoint, ClientCredentials, NotFound, Record
from tests.sdk.conftest import ADMIN, FAST, SCHEMA, unique
from tests.sdk.proxy import Proxy


async def test_crud_lists_and_errors(server: str) -> None:
    async with AsyncClient(server, ADMIN, retry=FAST) as api:
        org = await api.orgs.create(unique("org"), "Org")
        ds = (await api.datasets.create(unique("ds"), org=org.name, title="T", schema=SCHEMA)).name
        created = await api.records.create(ds, {"sku": "a", "name": "A", "price": 1})
        assert isinstance(created, Record)
        created.data["price"] = 2
        assert (await api.records.update(created)).version == 2
        await api.records.put(ds, "b", {"sku": "b", "name": "B", "price": 3})

        listed = [r.data["sku"] async for r in api.records.list(ds, sort="-price", limit=1)]
        assert listed == ["b", "a"]
        pages = [page async for page in api.records.list(ds, limit=1).pages()]
        assert len(pages) == 2

        await api.records.delete(ds, "b")
        with pytest.raises(NotFound):
            await api.records.get(ds, "b")


async def test_a_lost_answer_to_an_async_write_is_applied_once(server: str, through: Proxy) -> None:
    async with (
        AsyncClient(server, ADMIN) as admin,
        AsyncClient(through.url, ADMIN, retry=FAST) as flaky,
    ):
        org = await admin.orgs.create(unique("org"), "Org")
        ds = (
            await admin.datasets.create(unique("ds"), org=org.name, title="T", schema=SCHEMA)
        ).name
        through.drop(1)
        created = await flaky.records.create(ds, {"sku": "x", "name": "X"})
        assert [r.id for r in await admin.records.list(ds).collect()] == [created.id]
        assert len(through.seen("POST", f"/v1/datasets/{ds}/records")) == 2


async def test_concurrent_requests_share_one_token_fetch(server: str, through: Proxy) -> None:
    async with AsyncClient(server, ADMIN) as admin:
        org = await admin.orgs.create(unique("org"), "Org")
        app = await admin.apps.create(org.name, "a", scopes=["datasets:read"])
    credentials = ClientCredentials(app.client_id, app.client_secret)
    async with AsyncClient(through.url, credentials, retry=FAST) as api:
        found = await asyncio.gather(*(api.orgs.list().collect() for _ in range(5)))
    assert len(found) == 5
    assert len(through.seen("POST", "/oauth/token")) == 1


async def test_the_async_follower_checkpoints(server: str) -> None:
    async with AsyncClient(server, ADMIN) as api:
        org = await api.orgs.create(unique("org"), "Org")
        ds = (
            await api.datasets.create(
                unique("ds"), org=org.name, title="T", schema=SCHEMA, primary_key="sku"
            )
        ).name
        for n in range(3):
            await api.records.put(ds, f"k{n}", {"sku": f"k{n}", "name": "N"})
        checkpoints: list[Checkpoint] = []
        ids = [
            c.id
            async for c in api.changes.follow(ds, checkpoint=checkpoints.append, until_idle=True)
        ]
        assert ids == ["k0", "k1", "k2"]
        assert [c.seq for c in checkpoints] == [3]
