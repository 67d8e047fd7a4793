"""A stream ticket opens its feed's event stream over a real `entrepot serve`.

No Authorization header: the ticket in the URL is the credential. It reopens the
stream with Last-Event-ID as often as asked until it expires (what EventSource
does on a dropped connection), then is refused; a narrowed grantee's stream shows
what its grant shows; and the ticket appears in no line the server writes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_feed_sse import Stream, put
from tests.e2e.test_serve import serving
from tests.factories import (
    client_credentials_token,
    make_app,
    make_dataset,
    make_key,
    make_org,
)
from tests.integration.test_access_requests import (
    READ,
    approve,
    auth,
    party,
    pending_request,
    restricted_dataset,
)

pytestmark = pytest.mark.slow

ADMIN = "e2e-stream-tickets-admin-token-0123456789"
TICKET_SECONDS = 3


@dataclass(frozen=True)
class Server:
    base: str
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fresh_database: object) -> Iterator[Server]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "json",
        "ENTREPOT_LOG_LEVEL": "info",  # every request's access line
        "ENTREPOT_STREAM_TICKET_SECONDS": str(TICKET_SECONDS),
        "ENTREPOT_FEED_HEARTBEAT_SECONDS": "0.5",
    }
    log = Path(tmp_path_factory.mktemp("tickets")) / "serve.log"
    with serving(env, log=log) as base:
        yield Server(base, log)


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base, headers=auth(ADMIN), timeout=30) as c:
        yield c


@asynccontextmanager
async def stream_at(
    url: str, last_event_id: int | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    """The event stream at ``url``, opened as a browser would: no Authorization header
    unless ``headers`` has one."""
    headers = {"Accept": "text/event-stream", **(headers or {})}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    async with (
        httpx.AsyncClient(timeout=30) as browser,
        browser.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        yield Stream(response)


async def ticket(client: httpx.AsyncClient, ds: str, key: str = ADMIN) -> dict[str, str]:
    answer = await client.post(f"/v1/datasets/{ds}/changes/tickets", headers=auth(key))
    assert answer.status_code == 200, answer.text
    body: dict[str, str] = answer.json()
    return body


async def test_a_ticket_reopens_its_stream_until_it_expires_and_is_never_logged(
    client: httpx.AsyncClient, server: Server
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    await put(client, ds, "a", 1)
    issued = await ticket(client, ds)
    assert issued["url"] == f"{server.base}/v1/datasets/{ds}/changes?ticket={issued['ticket']}"

    async with stream_at(issued["url"]) as stream:
        first = await stream.next_event()
        assert first is not None
        assert (first.id, first.json()["id"]) == ("1", "a")
        await put(client, ds, "b", 2)  # written after the stream opened
        second = await stream.next_event()
        assert second is not None
        assert (second.id, second.json()["id"]) == ("2", "b")

    # Dropped, EventSource reconnects to the same URL with Last-Event-ID: nothing twice.
    await put(client, ds, "c", 3)
    async with stream_at(issued["url"], last_event_id=2) as stream:
        third = await stream.next_event()
        assert third is not None
        assert (third.id, third.json()["id"]) == ("3", "c")

    # Once it has expired it opens nothing: the page asks for a new ticket.
    deadline = time.monotonic() + TICKET_SECONDS + 5
    async with httpx.AsyncClient(timeout=10) as browser:
        while True:
            sse = {"Accept": "text/event-stream"}
            async with browser.stream("GET", issued["url"], headers=sse) as answer:
                if answer.status_code == 401:
                    await answer.aread()
                    break
                assert answer.status_code == 200, await answer.aread()
            assert time.monotonic() < deadline, "the ticket never expired"
            await asyncio.sleep(0.2)
    assert answer.headers["content-type"] == "application/problem+json"
    assert "expired" in answer.json()["detail"]

    renewed = await ticket(client, ds)
    async with stream_at(renewed["url"] + "&after=3") as stream:
        await put(client, ds, "d", 4)
        fourth = await stream.next_event()
        assert fourth is not None
        assert fourth.id == "4"

    log = server.log.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    feed_lines = [
        line
        for line in lines
        if line.get("event") == "request" and line.get("path") == f"/v1/datasets/{ds}/changes"
    ]
    assert len(feed_lines) >= 4, "the access log has the stream requests"
    assert {line["status"] for line in feed_lines} >= {200, 401}
    for secret in (issued["ticket"], renewed["ticket"]):
        assert secret not in log
        assert secret.split(".")[2] not in log  # not even its signature


async def test_a_narrowed_grantee_streams_what_its_grant_shows(client: httpx.AsyncClient) -> None:
    provider, consumer = await party(client), await party(client)
    ds = await restricted_dataset(client, provider.org)
    approved = await approve(
        client,
        provider.admin_key,
        await pending_request(client, consumer, ds),
        scopes=READ,
        fields=["sku", "name", "region"],
        row_filter={"region": "eu"},
    )
    assert approved.status_code == 200, approved.text
    issued = await ticket(client, ds, consumer.app_key)
    async with stream_at(issued["url"]) as stream:
        seen = [await stream.next_event() for _ in range(3)]
        assert [e.json()["id"] for e in seen if e] == ["a", "b", "c"]
        for record, region in (("us-1", "us"), ("eu-1", "eu")):
            body = {"sku": record, "name": record, "price": 5, "region": region}
            created = await client.post(f"/v1/datasets/{ds}/records", json=body)
            assert created.status_code == 201, created.text
        fresh = await stream.next_event()
        assert fresh is not None
        assert fresh.json()["id"] == "eu-1", "the row outside the filter is not shown"
        assert fresh.json()["data"] == {"sku": "eu-1", "name": "eu-1", "region": "eu"}
        assert all("price" not in (e.json()["data"] or {}) for e in seen if e)


@pytest.mark.parametrize("opened_with", ["ticket", "key", "access token"])
async def test_revoking_the_credential_ends_an_open_stream(
    client: httpx.AsyncClient, server: Server, opened_with: str
) -> None:
    """Whether opened with a ticket, the key itself or an app's access token, a stream
    does not outlive its credential: the next page after the key's revocation (the
    app's disabling, for a token) is a 401, and the end."""
    org = (await make_org(client))["name"]
    app = await make_app(client, org, scopes=READ)
    ds = (await make_dataset(client, org, primary_key="sku"))["name"]
    await put(client, ds, "a", 1)
    key = await make_key(client, app["id"])
    feed = f"{server.base}/v1/datasets/{ds}/changes"
    if opened_with == "ticket":
        opening = stream_at((await ticket(client, ds, key["key"]))["url"])
    elif opened_with == "key":
        opening = stream_at(feed, headers=auth(key["key"]))
    else:
        async with httpx.AsyncClient(base_url=server.base) as anon:
            token = await client_credentials_token(anon, app)
        opening = stream_at(feed, headers=auth(token))
    async with opening as stream:
        first = await stream.next_event()
        assert first is not None
        assert first.id == "1"
        if opened_with == "access token":
            revoked = await client.patch(f"/v1/apps/{app['id']}", json={"disabled": True})
            assert revoked.status_code == 200, revoked.text
        else:
            revoked = await client.delete(f"/v1/apps/{app['id']}/keys/{key['id']}")
            assert revoked.status_code == 204, revoked.text
        await put(client, ds, "b", 2)
        ending = await stream.next_event(within=5)
        assert ending is not None
        assert ending.event == "error", ending
        assert ending.json()["status"] == 401
        assert await stream.next(within=3) is None, "the server ends the stream"


async def test_an_open_dataset_streams_to_a_caller_with_no_credential(
    client: httpx.AsyncClient, server: Server
) -> None:
    """Open data needs no ticket: an EventSource with nothing in its URL follows it, past
    idle heartbeats (each a re-check with nothing to revoke) to a change written later."""
    ds = (await make_dataset(client, visibility="open", primary_key="sku"))["name"]
    await put(client, ds, "a", 1)
    async with stream_at(f"{server.base}/v1/datasets/{ds}/changes") as stream:
        first = await stream.next_event()
        assert first is not None
        assert first.id == "1"
        beat = await stream.next(within=3)
        assert beat is not None
        assert beat.comment == "heartbeat"
        await put(client, ds, "b", 2)
        later = await stream.next_event()
        assert later is not None
        assert (later.event, later.id) == ("change", "2")
