"""Stream tickets (issue 9): a browser opens a feed's event stream with ``?ticket=``.

A ticket is asked for with a bearer, under the same decision as reading the feed;
it opens that one dataset's event stream as its caller and nothing else: never
as a bearer, never another dataset, never the JSON feed, never once expired or
once its credential is revoked. Every refusal is a problem document and a
``denied`` audit row. (Streams that open are tested over a real server:
tests/e2e/test_stream_tickets.py; the in-process transport buffers whole answers.)
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN, app_and_client
from tests.factories import make_dataset, make_key, make_user, sign_in, unique
from tests.integration.test_access_requests import (
    READ,
    Party,
    approve,
    auth,
    party,
    pending_request,
    restricted_dataset,
)

SSE = {"Accept": "text/event-stream"}


async def ticket_for(client: httpx.AsyncClient, ds: str, key: str = ADMIN_TOKEN) -> str:
    answer = await client.post(f"/v1/datasets/{ds}/changes/tickets", headers=auth(key))
    assert answer.status_code == 200, answer.text
    ticket: str = answer.json()["ticket"]
    return ticket


async def denied_row(database_url: str, request_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT actor, action, status, details FROM audit_log "
            "WHERE request_id = $1 AND outcome = 'denied'",
            request_id,
        )
    finally:
        await conn.close()
    assert len(rows) == 1, rows
    return rows[0]


async def refused(
    anon: httpx.AsyncClient,
    database_url: str,
    url: str,
    status: int,
    headers: dict[str, str] | None = None,
    **params: str,
) -> tuple[dict[str, Any], asyncpg.Record]:
    """The problem answered for ``url`` and the one denied audit row it left."""
    request_id = unique("req")
    answer = await anon.get(
        url, params=params, headers={**SSE, "X-Request-ID": request_id, **(headers or {})}
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return answer.json(), await denied_row(database_url, request_id)


def claims_of(ticket: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = ticket.split(".")

    def part(text: str) -> dict[str, Any]:
        decoded: dict[str, Any] = orjson.loads(
            base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        )
        return decoded

    return part(header), part(payload)


@pytest.fixture
async def provider(client: httpx.AsyncClient) -> Party:
    return await party(client)


async def test_a_ticket_is_asked_for_with_a_bearer_and_names_one_feed(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    before = time.time()
    answer = await client.post(f"/v1/datasets/{ds}/changes/tickets")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert set(body) == {"ticket", "expires_at", "url"}
    assert body["url"] == f"http://testserver/v1/datasets/{ds}/changes?ticket={body['ticket']}"
    expires = datetime.fromisoformat(body["expires_at"]).timestamp()
    assert before + 59 <= expires <= time.time() + 61  # ENTREPOT_STREAM_TICKET_SECONDS: 60

    header, claims = claims_of(body["ticket"])
    assert header["typ"] == "entrepot-stream-ticket+jwt"
    assert claims["aud"] == "entrepot:stream-ticket"
    assert claims["ds"] == ds
    assert claims["scope"] == "changes:read"
    assert ADMIN_TOKEN not in body["ticket"]

    conn = await asyncpg.connect(database_url)
    try:
        issued = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'changes.ticket_issued' "
            "AND target = $1 AND outcome = 'success'",
            f"dataset:{ds}",
        )
    finally:
        await conn.close()
    assert issued == 1


async def test_asking_needs_what_reading_the_feed_needs(
    client: httpx.AsyncClient, provider: Party
) -> None:
    ds = await restricted_dataset(client, provider.org)
    outsider = await party(client)
    hidden = await client.post(f"/v1/datasets/{ds}/changes/tickets", headers=auth(outsider.app_key))
    assert hidden.status_code == 404, hidden.text
    no_feed = (await make_key(client, provider.app_id, scopes=["records:read"]))["key"]
    lacking = await client.post(f"/v1/datasets/{ds}/changes/tickets", headers=auth(no_feed))
    assert lacking.status_code == 403, lacking.text
    nobody = await client.post(f"/v1/datasets/{ds}/changes/tickets", headers={"Authorization": ""})
    assert nobody.status_code == 401


async def test_a_ticket_is_never_a_bearer_nor_a_bearer_a_ticket(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, database_url: str
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    ticket = await ticket_for(client, ds)
    feed = f"/v1/datasets/{ds}/changes"
    for url in ("/v1/me", feed, f"/v1/datasets/{ds}/records"):
        answer = await anon.get(url, headers={**SSE, **auth(ticket)})
        assert answer.status_code == 401, (url, answer.text)
    # Another route's query string is no credential at all.
    assert (await anon.get("/v1/me", params={"ticket": ticket})).status_code == 401

    # An access token (a user's) in the ticket's place.
    user = await make_user(client, "correct horse battery")
    token = await sign_in(anon, user["email"], "correct horse battery")
    problem, row = await refused(anon, database_url, feed, 401, ticket=token)
    assert problem["status"] == 401
    assert row["action"] == "auth.failed"
    assert orjson.loads(row["details"])["reason"] == "invalid_ticket"

    # A ticket whose signature does not hold.
    header, payload, signature = ticket.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    await refused(anon, database_url, feed, 401, ticket=forged)
    # With a bearer as well: one or the other.
    both = await anon.get(feed, params={"ticket": ticket}, headers={**SSE, **auth(ADMIN_TOKEN)})
    assert both.status_code == 400, both.text


async def test_a_ticket_opens_its_own_dataset_event_stream_only(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, database_url: str
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    other = (await make_dataset(client, primary_key="sku"))["name"]
    ticket = await ticket_for(client, ds)
    problem, row = await refused(
        anon, database_url, f"/v1/datasets/{other}/changes", 403, ticket=ticket
    )
    assert ds in problem["detail"]
    assert (row["action"], row["status"]) == ("access.denied", 403)
    assert row["actor"].startswith("key:")  # the caller the ticket carries

    # The JSON feed (and its long poll) is not what a ticket is for.
    request_id = unique("req")
    json_feed = await anon.get(
        f"/v1/datasets/{ds}/changes",
        params={"ticket": ticket},
        headers={"X-Request-ID": request_id},
    )
    assert json_feed.status_code == 403, json_feed.text
    await denied_row(database_url, request_id)


async def consumer_of_restricted(
    client: httpx.AsyncClient, provider: Party
) -> tuple[Party, str, str]:
    """A fresh consumer granted read on a fresh restricted dataset of ``provider``'s:
    the consumer, the dataset and the grant's id."""
    consumer = await party(client)
    ds = await restricted_dataset(client, provider.org)
    approved = await approve(
        client, provider.admin_key, await pending_request(client, consumer, ds), scopes=READ
    )
    assert approved.status_code == 200, approved.text
    return consumer, ds, approved.json()["grant_id"]


async def test_a_revoked_key_ends_its_tickets(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, provider: Party, database_url: str
) -> None:
    consumer, ds, _ = await consumer_of_restricted(client, provider)
    key = await make_key(client, consumer.app_id)
    ticket = await ticket_for(client, ds, key["key"])
    revoked = await client.delete(f"/v1/apps/{consumer.app_id}/keys/{key['id']}")
    assert revoked.status_code == 204, revoked.text

    _, row = await refused(anon, database_url, f"/v1/datasets/{ds}/changes", 401, ticket=ticket)
    assert row["actor"] == f"key:{key['id']}"
    assert orjson.loads(row["details"])["reason"] == "revoked"


async def test_a_revoked_grant_hides_the_dataset_from_its_tickets(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, provider: Party, database_url: str
) -> None:
    consumer, ds, grant = await consumer_of_restricted(client, provider)
    ticket = await ticket_for(client, ds, consumer.app_key)
    revoked = await client.delete(f"/v1/grants/{grant}", headers=auth(provider.admin_key))
    assert revoked.status_code == 204, revoked.text
    # The same 404 as for any caller the dataset is hidden from: nothing is revealed.
    await refused(anon, database_url, f"/v1/datasets/{ds}/changes", 404, ticket=ticket)


async def test_a_ticket_expires(settings: Settings, database_url: str) -> None:
    brief = settings.model_copy(update={"stream_ticket_seconds": 1})
    async with app_and_client(brief) as (_, client):
        ds = (await make_dataset(client, primary_key="sku"))["name"]
        answer = await client.post(f"/v1/datasets/{ds}/changes/tickets")
        ticket, expires_at = answer.json()["ticket"], answer.json()["expires_at"]
        assert datetime.fromisoformat(expires_at).timestamp() <= time.time() + 1
        client.headers.pop("Authorization")
        deadline = time.monotonic() + 5
        while True:
            request_id = uuid.uuid4().hex
            # A ticket that still opens would stream forever in process: ask for a stream
            # of another dataset, refused 403 while the ticket holds, 401 once it expired.
            answer = await client.get(
                f"/v1/datasets/{ds}-other/changes",
                params={"ticket": ticket},
                headers={**SSE, "X-Request-ID": request_id},
            )
            if answer.status_code == 401:
                break
            assert answer.status_code == 403, answer.text
            assert time.monotonic() < deadline, "the ticket never expired"
            await asyncio.sleep(0.1)
        assert "expired" in answer.json()["detail"]
        row = await denied_row(database_url, request_id)
        assert orjson.loads(row["details"])["reason"] == "ticket_expired"
        assert row["actor"].startswith("key:")
