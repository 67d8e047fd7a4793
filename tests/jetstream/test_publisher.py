"""The change feed into NATS JetStream, against the machine's nats-server.

A configured stream carries its dataset's feed in feed order, each change once,
with the message id ``dataset:incarnation:seq`` (a republish is dropped by
JetStream's duplicate window); a publisher that starts afresh resumes after the
last change JetStream holds, republishing nothing; one lease holder publishes and
another takes over once its lease expires, while a stale holder's publish is
refused by JetStream itself; a stream for a grant carries exactly the grantee's
feed, and ends when the grant is revoked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from entrepot.access.resolver import AccessResolver
from entrepot.changes.service import FeedService
from entrepot.changes.waiter import ChangeWaiter
from entrepot.datasets.registry import DatasetRegistry
from entrepot.settings import Settings
from entrepot.store.pool import create_pool
from entrepot.streams import admin, lease_repository, metrics
from entrepot.streams.jetstream import FIRST_CONNECT_SECONDS, PUBLISH_FAILURES, JetStreamLink
from entrepot.streams.lease import Lease
from entrepot.streams.publisher import Publisher
from tests.chaos.replicas import free_ports
from tests.factories import make_dataset, unique
from tests.integration.test_access_requests import READ, auth, party, restricted_dataset
from tests.integration.test_feed_narrowing import grant
from tests.jetstream.broker import delete_stream, stream_messages
from tests.waiting import until

LEASE_SECONDS = 2.0


@dataclass
class Harness:
    """A publisher's parts on the suite's database, and the streams a test configured
    (ended and deleted from NATS afterwards, so no later publisher picks them up)."""

    database_url: str
    nats_url: str
    pool: asyncpg.Pool
    feed: FeedService
    registry: DatasetRegistry
    waiter: ChangeWaiter
    streams: list[dict[str, Any]] = field(default_factory=list)

    async def add(self, dataset: str, grant: str | None = None) -> dict[str, Any]:
        added = await admin.add(
            self.database_url,
            dataset,
            grant=uuid.UUID(grant) if grant else None,
            stream=None,
            subject=None,
            os_user="test",
        )
        self.streams.append(added)
        return added

    def publisher(self, lease_name: str, holder: str | None = None) -> Publisher:
        return Publisher(
            self.pool,
            self.feed,
            self.registry,
            self.waiter,
            JetStreamLink(self.nats_url, duplicate_window=120),
            Lease(LEASE_SECONDS, holder=holder, name=lease_name),
            interval=0.2,
        )

    @asynccontextmanager
    async def running(self, lease_name: str | None = None) -> AsyncIterator[Publisher]:
        publisher = self.publisher(lease_name or unique("lease"))
        publisher.start()
        try:
            yield publisher
        finally:
            await publisher.stop()


@pytest.fixture
async def harness(settings: Settings, nats_url: str) -> AsyncIterator[Harness]:
    assert settings.database_url
    direct = settings.direct_url()
    assert direct
    pool = await create_pool(settings, settings.database_url)
    registry = DatasetRegistry(pool, 0)
    waiter = ChangeWaiter(direct)
    waiter.start()
    built = Harness(
        direct, nats_url, pool, FeedService(AccessResolver(pool, registry, 0)), registry, waiter
    )
    try:
        yield built
    finally:
        for stream in built.streams:
            await admin.end(direct, uuid.UUID(stream["id"]), os_user="test")
            await delete_stream(nats_url, stream["stream"])
        await waiter.stop()
        await pool.close()


async def whole_feed(
    client: httpx.AsyncClient, ds: str, key: str | None = None
) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    after = 0
    headers = auth(key) if key else None
    while True:
        page = await client.get(
            f"/v1/datasets/{ds}/changes", params={"after": after, "limit": 1000}, headers=headers
        )
        assert page.status_code == 200, page.text
        body = page.json()
        changes.extend(body["changes"])
        if body["last_seq"] == after:
            return changes
        after = body["last_seq"]


async def head(client: httpx.AsyncClient, ds: str) -> int:
    return (await whole_feed(client, ds))[-1]["seq"]


async def caught_up(harness: Harness, stream: dict[str, Any], seq: int) -> bool:
    """Whether JetStream's last message on the stream carries feed seq ``seq``."""
    link = JetStreamLink(harness.nats_url, 120)
    try:
        last = await link.last_message(stream["stream"], stream["subject"])
    except Exception:  # the publisher may not have created the stream yet
        return False
    finally:
        await link.close()
    return last is not None and last.seq >= seq


def as_feed(body: dict[str, Any]) -> dict[str, Any]:
    """A message's body as the HTTP feed shows the change (without dataset, incarnation)."""
    return {k: v for k, v in body.items() if k not in ("dataset", "incarnation")}


async def write_history(client: httpx.AsyncClient, ds: str, n: int) -> None:
    """Creates, updates and deletes: ``n`` changes over a handful of records."""
    for i in range(n):
        sku = f"s{i % 7}"
        if i % 11 == 10:
            assert (await client.delete(f"/v1/datasets/{ds}/records/{sku}")).status_code in (
                204,
                404,
            )
        else:
            body = {"sku": sku, "name": f"n{i}", "price": i}
            answer = await client.put(f"/v1/datasets/{ds}/records/{sku}", json=body)
            assert answer.status_code in (200, 201), answer.text


async def test_a_full_stream_carries_the_feed_in_order_each_change_once(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    await write_history(client, ds, 40)
    stream = await harness.add(ds)
    assert stream["audience"] == "full"
    async with harness.running() as publisher:
        assert "jetstream-publisher" in publisher.liveness.names()  # /healthz watches it
        await write_history(client, ds, 25)  # while it publishes, too
        last = await head(client, ds)
        await until(lambda: caught_up(harness, stream, last), "the stream reaches the head")
        lag = metrics.LAG.labels(stream["stream"], ds)

        async def no_lag() -> bool:
            return lag._value.get() == 0

        await until(no_lag, "the lag gauge reads 0")
        assert publisher.liveness.stalled() == []
    assert "jetstream-publisher" not in publisher.liveness.names()  # stopped on purpose

    seen = await stream_messages(harness.nats_url, stream["stream"], stream["subject"])
    feed = await whole_feed(client, ds)
    incarnation = seen[0][2]["incarnation"]
    assert [as_feed(body) for _, _, body in seen] == feed
    assert [int(h["Entrepot-Seq"]) for _, h, _ in seen] == list(range(1, last + 1))
    assert [stream_seq for stream_seq, _, _ in seen] == list(range(1, last + 1))
    assert [h["Nats-Msg-Id"] for _, h, _ in seen] == [
        f"{ds}:{incarnation}:{seq}" for seq in range(1, last + 1)
    ]
    assert {body["dataset"] for _, _, body in seen} == {ds}
    published = metrics.PUBLISHED.labels(stream["stream"], "published")._value.get()
    assert published == last
    assert {h["Entrepot-Op"] for _, h, _ in seen} == {"upsert", "delete"}


async def test_a_republished_change_is_dropped_by_the_duplicate_window(harness: Harness) -> None:
    name, subject = unique("dedup").replace("-", "_"), f"test.{unique('dedup')}"
    link = JetStreamLink(harness.nats_url, 120)
    try:
        await link.ensure_stream(name, subject)
        message = (
            {"Nats-Msg-Id": "ds:1:1", "Entrepot-Seq": "1", "Entrepot-Incarnation": "1"},
            b"{}",
        )
        first = await link.publish(subject, [message], expected_last=0)
        again = await link.publish(subject, [message], expected_last=0)
        assert first.failure is None
        assert again.failure is None
        assert first.acks[0].duplicate is not True
        assert again.acks[0].duplicate is True
        assert again.acks[0].seq == first.acks[0].seq == 1
        seen = await stream_messages(harness.nats_url, name, subject)
        assert [s for s, _, _ in seen] == [1]
    finally:
        await link.close()
        await delete_stream(harness.nats_url, name)


async def test_a_publisher_started_afresh_resumes_after_what_jetstream_holds(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    await write_history(client, ds, 30)
    stream = await harness.add(ds)
    async with harness.running():
        first = await head(client, ds)
        await until(lambda: caught_up(harness, stream, first), "the first publisher catches up")
    await write_history(client, ds, 20)
    published = metrics.PUBLISHED.labels(stream["stream"], "published")
    duplicates = metrics.PUBLISHED.labels(stream["stream"], "duplicate")
    before, dup_before = published._value.get(), duplicates._value.get()
    async with harness.running():  # a new lease, a new process's memory: nothing
        last = await head(client, ds)
        await until(lambda: caught_up(harness, stream, last), "the second publisher catches up")
    # It asked JetStream where to resume: nothing republished, not even as a duplicate.
    assert published._value.get() - before == last - first
    assert duplicates._value.get() == dup_before
    seen = await stream_messages(harness.nats_url, stream["stream"], stream["subject"])
    assert [int(h["Entrepot-Seq"]) for _, h, _ in seen] == list(range(1, last + 1))


async def test_one_holder_publishes_and_another_takes_over_when_its_lease_expires(
    harness: Harness,
) -> None:
    name = unique("lease")
    a, b = Lease(LEASE_SECONDS, name=name), Lease(LEASE_SECONDS, name=name)
    assert await a.refresh(harness.pool)
    assert not await b.refresh(harness.pool)  # a holds it
    taken = await lease_repository.current(harness.pool, name)
    assert taken is not None
    assert taken.holder == a.holder
    assert taken.term == a.term

    # a stops renewing (it died, or froze): b takes it once it has expired, in a new term.
    async def b_takes() -> bool:
        b._renewed_at = 0.0  # ask every time
        return await b.refresh(harness.pool)

    await until(b_takes, "b takes the expired lease", within=LEASE_SECONDS * 5)
    assert b.term == (a.term or 0) + 1
    # a, waking up, believes its lease has run out (its own clock counts it shorter) and
    # PostgreSQL agrees: it cannot renew it.
    assert not a.held
    a._renewed_at = 0.0
    assert not await a.refresh(harness.pool)
    assert a.term is None


async def test_a_stale_publisher_cannot_append_after_the_new_one(harness: Harness) -> None:
    """The broker is the fence: a publish that expects an older last message is refused."""
    name, subject = unique("fence").replace("-", "_"), f"test.{unique('fence')}"
    link = JetStreamLink(harness.nats_url, 120)

    def message(seq: int) -> tuple[dict[str, str], bytes]:
        headers = {
            "Nats-Msg-Id": f"ds:1:{seq}",
            "Entrepot-Seq": str(seq),
            "Entrepot-Incarnation": "1",
        }
        return headers, f'{{"seq":{seq}}}'.encode()

    try:
        await link.ensure_stream(name, subject)
        assert (await link.publish(subject, [message(1)], expected_last=0)).failure is None
        # The new holder publishes 2 and 3 after 1; the stale one still believes 1 is last.
        new = await link.publish(subject, [message(2), message(3)], expected_last=1)
        assert new.failure is None
        stale = await link.publish(subject, [message(4)], expected_last=1)
        assert stale.rejected
        assert stale.acks == []
        seen = await stream_messages(harness.nats_url, name, subject)
        assert [int(h["Entrepot-Seq"]) for _, h, _ in seen] == [1, 2, 3]
    finally:
        await link.close()
        await delete_stream(harness.nats_url, name)


async def test_a_grants_stream_is_the_grantees_feed_and_ends_with_the_grant(
    client: httpx.AsyncClient, harness: Harness
) -> None:
    provider, consumer = await party(client), await party(client)
    ds = await restricted_dataset(client, provider.org)
    grant_id = await grant(
        client, provider, consumer, ds, scopes=READ, fields=["sku", "name"],
        row_filter={"price": {"lt": 100}},
    )  # fmt: skip
    url = f"/v1/datasets/{ds}/records"
    for sku, price in (("b", 150), ("c", 20), ("a", 11), ("b", 160)):
        body = {"sku": sku, "name": f"item {sku}", "price": price, "region": "hidden-7f3a"}
        assert (await client.put(f"{url}/{sku}", json=body)).status_code == 200
    assert (await client.delete(f"{url}/a")).status_code == 204
    stream = await harness.add(ds, grant=grant_id)
    assert stream["audience"] == "grant"
    assert stream["grant"] == grant_id

    grantee_feed = await whole_feed(client, ds, consumer.app_key)
    async with harness.running() as publisher:
        await until(
            lambda: caught_up(harness, stream, grantee_feed[-1]["seq"]), "the grant's stream"
        )
        seen = await stream_messages(harness.nats_url, stream["stream"], stream["subject"])
        assert [as_feed(body) for _, _, body in seen] == grantee_feed
        for _, _, body in seen:
            assert set(body["data"] or {}) <= {"sku", "name"}

        revoked = await client.delete(f"/v1/grants/{grant_id}", headers=auth(provider.admin_key))
        assert revoked.status_code in (200, 204), revoked.text
        body = {"sku": "d", "name": "after revocation", "price": 1}
        assert (await client.put(f"{url}/d", json=body)).status_code == 201

        async def ended() -> dict[str, Any] | None:
            rows = [r for r in await admin.listing(harness.database_url) if r["id"] == stream["id"]]
            return rows[0] if rows[0]["ended_at"] else None

        row = await until(ended, "the stream ends with its grant")
        assert row["ended_reason"] == "grant_revoked"
        assert publisher.lease.held
    after = await stream_messages(harness.nats_url, stream["stream"], stream["subject"])
    assert len(after) == len(seen)  # nothing published once the grant was revoked
    audit = await client.get("/v1/audit", params={"action": "stream.ended", "limit": 1000})
    assert audit.status_code == 200, audit.text
    assert any(e["target"] == f"stream:{stream['id']}" for e in audit.json()["data"])


async def test_a_nats_server_that_is_not_there_fails_the_connect_in_bounded_time(
    harness: Harness,
) -> None:
    """The publisher's loop must come round (its heartbeat, its lease) with NATS away:
    the first connect gives up instead of retrying forever."""
    [port] = free_ports(1)
    link = JetStreamLink(f"nats://127.0.0.1:{port}", 120)
    try:
        async with asyncio.timeout(3 * FIRST_CONNECT_SECONDS):
            with pytest.raises(PUBLISH_FAILURES):
                await link.js()
    finally:
        await link.close()
