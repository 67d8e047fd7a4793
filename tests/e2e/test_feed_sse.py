"""The change feed as Server-Sent Events, over a real `entrepot serve` process.

(The in-process ASGI transport buffers whole responses, so streams are tested
against a real server and port.) Each change is one event, ``id`` its seq,
``event: change``, its data the very JSON item the long-poll feed returns;
an idle stream sends heartbeats; a client reconnecting with ``Last-Event-ID``
misses nothing and sees nothing twice; a stream whose reader loses access
ends; a reader overtaken by compaction is told so with ``event: gone``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from entrepot.changes import repository as changes_repo
from entrepot.changes.compaction import compact_dataset
from tests.e2e.test_serve import serving
from tests.factories import make_dataset
from tests.integration.test_access_requests import (
    READ,
    approve,
    auth,
    party,
    pending_request,
    restricted_dataset,
)

pytestmark = pytest.mark.slow

ADMIN = "e2e-feed-sse-admin-token-0123456789abcdef"
HEARTBEAT = 0.5


@dataclass(frozen=True)
class Server:
    base: str
    database_url: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fresh_database: object) -> Iterator[Server]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_FEED_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "ENTREPOT_MAX_BODY_BYTES": str(64 * 1024 * 1024),
    }
    with serving(env, log=Path(tmp_path_factory.mktemp("sse")) / "serve.log") as base:
        yield Server(base, url)


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server.base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    ) as c:
        yield c


@dataclass(frozen=True)
class Event:
    event: str | None = None
    id: str | None = None
    data: str | None = None
    comment: str | None = None

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class Stream:
    """An open event stream, read one event (or comment) at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def _read(self) -> Event | None:
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line == "":
                if fields:
                    return Event(fields.get("event"), fields.get("id"), fields.get("data"))
                continue
            if line.startswith(":"):
                return Event(comment=line[1:].strip())
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data" and "data" in fields:
                value = fields["data"] + "\n" + value
            if name != "retry":
                fields[name] = value
        return None

    async def next(self, within: float = 5.0) -> Event | None:
        """The next event or comment; None when the server has ended the stream."""
        async with asyncio.timeout(within):
            return await self._read()

    async def next_event(self, within: float = 5.0) -> Event | None:
        """The next event within ``within`` seconds, heartbeats skipped; None at the end."""
        async with asyncio.timeout(within):
            while True:
                event = await self._read()
                if event is None or event.comment is None:
                    return event


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    ds: str,
    *,
    last_event_id: int | None = None,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> AsyncIterator[Stream]:
    sent = {"Accept": "text/event-stream", **(headers or {})}
    if last_event_id is not None:
        sent["Last-Event-ID"] = str(last_event_id)
    async with client.stream(
        "GET", f"/v1/datasets/{ds}/changes", params=params, headers=sent
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


async def json_feed(client: httpx.AsyncClient, ds: str, after: int = 0) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/datasets/{ds}/changes", params={"after": after, "limit": 1000}
    )
    assert response.status_code == 200, response.text
    changes: list[dict[str, Any]] = response.json()["changes"]
    return changes


async def put(client: httpx.AsyncClient, ds: str, sku: str, price: int) -> None:
    response = await client.put(
        f"/v1/datasets/{ds}/records/{sku}", json={"sku": sku, "name": f"n{price}", "price": price}
    )
    assert response.status_code in (200, 201), response.text


async def test_events_are_the_feed_items_and_an_idle_stream_has_heartbeats(
    client: httpx.AsyncClient,
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    await put(client, ds, "a", 1)
    await put(client, ds, "a", 2)
    assert (await client.delete(f"/v1/datasets/{ds}/records/a")).status_code == 204

    async with open_stream(client, ds) as stream:
        events = [await stream.next_event() for _ in range(3)]
        assert [(e.id, e.event) for e in events if e] == [
            ("1", "change"),
            ("2", "change"),
            ("3", "change"),
        ]
        assert [e.json() for e in events if e] == await json_feed(client, ds)

        # Idle: only heartbeats, about every HEARTBEAT seconds.
        loop = asyncio.get_running_loop()
        started, beats = loop.time(), 0
        while loop.time() - started < 4 * HEARTBEAT:
            idle = await stream.next(within=2 * HEARTBEAT)
            assert idle is not None
            assert idle.comment == "heartbeat", idle
            beats += 1
        assert beats >= 3

        # And a new commit arrives at once.
        written = loop.time()
        await put(client, ds, "b", 3)
        fresh = await stream.next_event(within=2)
        assert fresh is not None
        assert (fresh.id, fresh.event, fresh.json()["id"]) == ("4", "change", "b")
        assert loop.time() - written < 0.5
        assert fresh.json() == (await json_feed(client, ds, after=3))[0]


async def test_reconnecting_with_last_event_id_loses_and_repeats_nothing(
    client: httpx.AsyncClient,
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    rng = random.Random(4)
    writes = 150

    async def writer() -> None:
        for i in range(writes):
            sku = f"s{rng.randrange(8)}"
            if i % 9 == 8:
                await client.delete(f"/v1/datasets/{ds}/records/{sku}")  # 204 or 404
            else:
                await put(client, ds, sku, i)
            if i % 10 == 0:
                await asyncio.sleep(0.01)

    writing = asyncio.create_task(writer())
    seen: list[dict[str, Any]] = []
    ids: list[int] = []
    reconnects = 0
    last: int | None = None
    caught_up = False
    while not caught_up:
        async with open_stream(client, ds, last_event_id=last) as stream:
            for _ in range(rng.randint(3, 25)):  # then drop the connection mid-stream
                try:
                    event = await stream.next_event(within=1.0)
                except TimeoutError:
                    caught_up = writing.done()
                    if caught_up:
                        break
                    continue
                assert event is not None, "the stream ended by itself"
                assert event.event == "change", event
                assert event.id is not None
                ids.append(int(event.id))
                seen.append(event.json())
                last = int(event.id)
        reconnects += 1
    await writing

    expected = await json_feed(client, ds)
    assert reconnects >= 5
    assert ids == list(range(1, len(expected) + 1)), "every seq once, in order"
    assert seen == expected


async def test_losing_access_ends_the_stream(client: httpx.AsyncClient) -> None:
    provider, consumer = await party(client), await party(client)
    ds = await restricted_dataset(client, provider.org)
    request_id = await pending_request(client, consumer, ds)
    approved = await approve(client, provider.admin_key, request_id, scopes=READ)
    assert approved.status_code == 200, approved.text

    async with open_stream(client, ds, headers=auth(consumer.app_key)) as stream:
        assert [(await stream.next_event()) is not None for _ in range(3)] == [True] * 3
        revoked = await client.delete(
            f"/v1/grants/{approved.json()['grant_id']}", headers=auth(provider.admin_key)
        )
        assert revoked.status_code == 204, revoked.text
        await put(client, ds, "after-revocation", 1)
        ending = await stream.next_event(within=3)
        assert ending is not None
        assert ending.event == "error"
        assert ending.json()["status"] == 404
        assert await stream.next(within=3) is None, "the server ends the stream"

    # The dataset's owner loses it too when the dataset is deleted.
    async with open_stream(client, ds, after=3) as stream:
        first = await stream.next_event()
        assert first is not None
        assert first.json()["id"] == "after-revocation"
        assert (await client.delete(f"/v1/datasets/{ds}")).status_code == 204
        ending = await stream.next_event(within=3)
        assert ending is not None
        assert (ending.event, ending.json()["status"]) == ("error", 404)
        assert await stream.next(within=3) is None


async def compact_everything(database_url: str, ds: str) -> None:
    """Age every change of ``ds`` past retention and compact, as housekeeping would."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        ds_id = await pool.fetchval("SELECT id FROM datasets WHERE name = $1", ds)
        await changes_repo.sequence(pool, ds_id)  # numbered, as any reader would
        await pool.execute(
            "UPDATE changes SET at = now() - interval '30 days' "
            "WHERE dataset_id = $1 AND seq IS NOT NULL",  # pending ones belong to passes
            ds_id,
        )
        assert await compact_dataset(pool, ds_id, 7 * 86_400) > 0
    finally:
        await pool.close()


async def test_a_cursor_behind_the_horizon_gets_gone(
    client: httpx.AsyncClient, server: Server
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    for i in range(5):
        await put(client, ds, f"s{i}", i)
    await compact_everything(server.database_url, ds)
    async with open_stream(client, ds, last_event_id=2) as stream:
        gone = await stream.next_event()
        assert gone is not None
        assert gone.event == "gone"
        assert (gone.json()["status"], gone.json()["min_seq"], gone.json()["last_seq"]) == (
            410,
            4,
            5,
        )
        assert await stream.next() is None
    async with open_stream(client, ds, last_event_id=4) as stream:
        newest = await stream.next_event()
        assert newest is not None
        assert newest.id == "5"


async def test_a_slow_reader_overtaken_by_compaction_mid_stream_gets_gone(
    client: httpx.AsyncClient, server: Server
) -> None:
    """The reader stops reading; the server blocks on a full socket; compaction runs."""
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    filler = "x" * 1000
    count = 24_000
    body = "\n".join(
        json.dumps({"sku": f"r{i:05d}", "name": filler, "price": i}) for i in range(count)
    )
    imported = await client.post(
        f"/v1/datasets/{ds}/import",
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
        timeout=120,
    )
    assert imported.status_code == 200, imported.text

    async with open_stream(client, ds) as stream:
        first = await stream.next_event()
        assert first is not None
        assert first.id == "1"
        await compact_everything(server.database_url, ds)  # while the reader dawdles
        ids = [1]
        while True:
            event = await stream.next_event(within=10)
            assert event is not None, "the stream must say why it ends"
            if event.event != "change":
                break
            assert event.id is not None
            ids.append(int(event.id))
    assert event.event == "gone"
    assert ids == list(range(1, len(ids) + 1)), "no gap before the end"
    assert event.json()["min_seq"] == count - 1
    assert event.json()["last_seq"] == count
    assert ids[-1] < count - 1, "the reader was overtaken"
