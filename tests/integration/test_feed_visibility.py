"""What a narrowed grant's change feed may show, on every path it reaches the grantee.

A grantee limited by a row filter (and perhaps to some fields) sees an entry
for a record only if the record was visible to its grant before or after the
change: visible to visible is an upsert, visible to hidden a delete, hidden
to visible an upsert, hidden to hidden nothing; a change that leaves every
visible field as it was is nothing too. The property drives random write
sequences (single writes and bulk upserts) against random narrowings and
checks the long-poll feed, the Server-Sent Events stream and the webhook
deliveries alike: replayed from seq 0 each equals the grantee's own view of
the final dataset, never names a record the grant never saw, and never says
anything that changes nothing it could see.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN, app_and_client, prepared_database
from tests.e2e.test_webhook_delivery import Receiver
from tests.factories import granted, make_app, make_dataset, make_key, make_org
from tests.integration.edge_helpers import http_scope, request_until

pytestmark = pytest.mark.slow

SCOPES = ["datasets:read", "records:read", "changes:read", "webhooks:manage"]
IDS = ("r0", "r1", "r2", "r3", "r4")
REGIONS = ("eu", "us", "asia")
ROW_FILTERS: tuple[dict[str, Any], ...] = (
    {"region": "eu"},
    {"price": {"lt": 50}},
    {"region": {"in": ["eu", "asia"]}, "price": {"gte": 20}},
    {"region": {"ne": "us"}},
)
FIELDS: tuple[list[str] | None, ...] = (None, ["sku", "name", "region"])
HEARTBEAT = 0.1

Record = dict[str, Any]


@dataclass(repr=False)  # falsifying examples print their arguments: keep this one short
class Stack:
    app: FastAPI
    client: httpx.AsyncClient
    receiver: Receiver

    def __repr__(self) -> str:
        return "Stack()"


@pytest.fixture(scope="module")
async def stack(fresh_database: Callable[[], Awaitable[str]]) -> AsyncIterator[Stack]:
    """An app of its own: loopback webhooks allowed, quick heartbeats for the streams."""
    settings = Settings(
        database_url=await prepared_database(fresh_database),
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        webhook_allowed_networks="127.0.0.0/8",
        webhook_retry_schedule="0,0.2,0.2",
        feed_heartbeat_seconds=HEARTBEAT,
    )
    receiver = Receiver()
    async with app_and_client(settings) as (application, client):
        yield Stack(application, client, receiver)
    receiver.close()


# --- the model ----------------------------------------------------------------


def passes(record: Record, row_filter: dict[str, Any]) -> bool:
    """The row filter as PostgreSQL evaluates it on these records (absent: JSON null)."""
    for field, spec in row_filter.items():
        ops = spec if isinstance(spec, dict) else {"eq": spec}
        value = record.get(field)
        for op, operand in ops.items():
            if op == "eq" and value != operand:
                return False
            if op == "ne" and value == operand:
                return False
            if op == "in" and value not in operand:
                return False
            if op in ("lt", "gte") and not isinstance(value, int | float):
                return False
            if op == "lt" and not value < operand:
                return False
            if op == "gte" and not value >= operand:
                return False
    return True


def seen(record: Record | None, row_filter: dict[str, Any], fields: list[str] | None) -> Any:
    """What the grant sees of one record: its visible fields, or None (hidden or absent)."""
    if record is None or not passes(record, row_filter):
        return None
    return record if fields is None else {k: v for k, v in record.items() if k in fields}


def replay(changes: list[dict[str, Any]], check: Callable[[dict[str, Any], Any], None]) -> Any:
    """Apply feed entries in order; ``check`` sees each with the mirror's state before it."""
    mirror: dict[str, Any] = {}
    for change in changes:
        check(change, mirror.get(change["id"]))
        if change["op"] == "delete":
            mirror.pop(change["id"], None)
        else:
            mirror[change["id"]] = change["data"]
    return mirror


def record_of(sku: str, region: str, price: int, name: str) -> Record:
    return {"sku": sku, "name": name, "price": price, "region": region, "stock": 1}


names = st.sampled_from(("a", "b"))
single = st.one_of(
    st.tuples(
        st.just("put"), st.sampled_from(IDS), st.sampled_from(REGIONS), st.integers(0, 99), names
    ),
    st.tuples(st.just("price"), st.sampled_from(IDS), st.integers(0, 99)),
    st.tuples(st.just("region"), st.sampled_from(IDS), st.sampled_from(REGIONS)),
    st.tuples(st.just("stock"), st.sampled_from(IDS), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.sampled_from(IDS)),
)
bulk = st.tuples(
    st.just("import"),
    st.lists(
        st.tuples(st.sampled_from(IDS), st.sampled_from(REGIONS), st.integers(0, 99), names),
        min_size=1,
        max_size=4,
        unique_by=lambda row: row[0],
    ),
)
operations = st.lists(st.one_of(single, single, bulk), min_size=1, max_size=14)


async def apply(
    client: httpx.AsyncClient, ds: str, state: dict[str, Record], op: tuple[Any, ...]
) -> None:
    """Perform one operation through the API and on the model."""
    url = f"/v1/datasets/{ds}/records"
    kind, sku = op[0], op[1]
    if kind == "put":
        record = record_of(sku, *op[2:])
        assert (await client.put(f"{url}/{sku}", json=record)).status_code in (200, 201)
        state[sku] = record
    elif kind in ("price", "region", "stock"):
        response = await client.patch(f"{url}/{sku}", json={kind: op[2]})
        assert response.status_code == (200 if sku in state else 404), response.text
        if sku in state:
            state[sku] = {**state[sku], kind: op[2]}
    elif kind == "delete":
        response = await client.delete(f"{url}/{sku}")
        assert response.status_code == (204 if sku in state else 404), response.text
        state.pop(sku, None)
    else:
        rows = [record_of(*row) for row in op[1]]
        response = await client.post(
            f"/v1/datasets/{ds}/import?mode=upsert",
            content=b"".join(orjson.dumps(r) + b"\n" for r in rows),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 200, response.text
        state.update({r["sku"]: r for r in rows})


# --- the three paths ------------------------------------------------------------


async def polled(client: httpx.AsyncClient, key: str, ds: str) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    after = 0
    while True:
        response = await client.get(
            f"/v1/datasets/{ds}/changes",
            params={"after": after, "limit": 3},  # small pages: positions past hidden changes
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        changes += page["changes"]
        if page["last_seq"] == after:
            return changes
        after = page["last_seq"]


async def streamed(app: FastAPI, key: str, ds: str) -> list[dict[str, Any]]:
    """The SSE stream from seq 0 through the whole ASGI app, read until it first idles."""
    idle = asyncio.Event()
    buffer = bytearray()
    changes: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        if message["type"] != "http.response.body":
            return
        buffer.extend(message.get("body", b""))
        while b"\n\n" in buffer:
            block, _, rest = bytes(buffer).partition(b"\n\n")
            buffer[:] = rest
            if block.startswith(b": heartbeat"):
                idle.set()
            fields = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
            if fields.get(b"event") == b"change":
                change = orjson.loads(fields[b"data"])
                assert int(fields[b"id"]) == change["seq"]
                changes.append(change)

    scope = http_scope(
        "GET",
        f"/v1/datasets/{ds}/changes",
        [("accept", "text/event-stream"), ("authorization", f"Bearer {key}")],
        b"after=0",
        spec_version="2.3",  # a stream that ends when its client goes, as under uvicorn
    )
    async with asyncio.timeout(15):
        await app(scope, request_until(idle), send)
    return changes


SENTINEL = {"sku": "zz", "name": "end", "price": 30, "region": "eu", "stock": 1}  # every filter


async def queued(client: httpx.AsyncClient, webhook_id: str, ds: str) -> list[dict[str, Any]]:
    """Every event queued for the webhook before the sentinel, in seq order.

    The sentinel, visible to every grant, is written last; the dispatcher queues
    a dataset's events in seq order, so once it is queued all earlier ones are.
    """
    written = await client.put(f"/v1/datasets/{ds}/records/zz", json=SENTINEL)
    assert written.status_code in (200, 201), written.text
    async with asyncio.timeout(15):
        while True:
            response = await client.get(
                f"/v1/webhooks/{webhook_id}/deliveries", params={"limit": 1000}
            )
            assert response.status_code == 200, response.text
            events = [d["payload"]["data"] for d in response.json()["data"]]
            if any(e["id"] == "zz" for e in events):
                break
            await asyncio.sleep(0.02)  # the dispatcher runs in the app's own tasks
    assert all(e["dataset"] == ds for e in events)
    return sorted((e for e in events if e["id"] != "zz"), key=lambda e: int(e["seq"]))


# --- the property ----------------------------------------------------------------

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@PROPERTY
@given(
    ops=operations,
    row_filter=st.sampled_from(ROW_FILTERS),
    fields=st.sampled_from(FIELDS),
)
async def test_a_narrowed_feed_replays_to_the_grantees_view_and_names_nothing_else(
    stack: Stack,
    ops: list[tuple[Any, ...]],
    row_filter: dict[str, Any],
    fields: list[str] | None,
) -> None:
    client = stack.client
    provider = (await make_org(client))["name"]
    ds = (await make_dataset(client, provider, primary_key="sku", visibility="restricted"))["name"]
    consumer = (await make_org(client))["name"]
    app = await make_app(client, consumer, scopes=SCOPES)
    key = (await make_key(client, app["id"]))["key"]
    narrowing: dict[str, Any] = {"row_filter": row_filter}
    if fields is not None:
        narrowing["fields"] = fields
    await granted(client, ds, app["id"], key, ADMIN_TOKEN, SCOPES[:3], **narrowing)
    hook = await client.post(
        f"/v1/apps/{app['id']}/webhooks",
        json={"url": stack.receiver.url + f"&case={uuid.uuid4().hex}", "datasets": [ds]},
    )
    assert hook.status_code == 201, hook.text
    stack.receiver.secrets.append(hook.json()["secret"])

    state: dict[str, Record] = {}
    ever_seen: set[str] = set()
    for op in ops:
        await apply(client, ds, state, op)
        ever_seen |= {sku for sku, r in state.items() if seen(r, row_filter, fields) is not None}

    listed = await client.get(
        f"/v1/datasets/{ds}/records",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert listed.status_code == 200, listed.text
    view = {r["id"]: r["data"] for r in listed.json()["data"]}
    expected = {sku: seen(r, row_filter, fields) for sku, r in state.items()}
    assert view == {sku: data for sku, data in expected.items() if data is not None}

    def says_something(change: dict[str, Any], before: Any) -> None:
        assert change["id"] in ever_seen, change  # never a record the grant never saw
        if change["op"] == "delete":
            assert before is not None, change  # only what the grantee holds is deleted
            assert change["data"] is None
        elif fields is not None:
            assert change["data"] != before, change  # no news about hidden fields

    feed = await polled(client, key, ds)
    assert replay(feed, says_something) == view
    assert await streamed(stack.app, key, ds) == feed
    hooked = await queued(client, hook.json()["id"], ds)
    assert [{k: v for k, v in c.items() if k != "dataset"} for c in hooked] == feed
