"""Webhook subscriptions and their delivery log, through the HTTP API.

Most tests run against an app of their own on a database of their own, set
up as an operator would for a private receiver: loopback allowed
(ENTREPOT_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8) and a retry schedule of
fractions of a second. The session app (no allow-list) shows the SSRF guard's
default. Deliveries go to a real receiver on 127.0.0.1 that verifies them
with the `standardwebhooks` library.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from prometheus_client import generate_latest

from entrepot.settings import Settings
from entrepot.store.work import plan_for_values
from entrepot.webhooks import queue_repository as queue_repo
from entrepot.webhooks import worker as worker_module
from entrepot.webhooks.limiter import INITIAL
from entrepot.webhooks.runtime import WebhookRuntime
from tests.conftest import ADMIN_TOKEN, app_and_client, prepared_database
from tests.e2e.test_webhook_delivery import Receiver
from tests.factories import make_app, make_dataset, make_key, make_org
from tests.integration.bulk_helpers import ndjson, post_import
from tests.waiting import until

HOOK_SCOPES = ["datasets:read", "records:read", "changes:read", "webhooks:manage"]


@pytest.fixture(scope="module")
async def hooks(fresh_database: Callable[[], Awaitable[str]]) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of an app allowing loopback receivers, with a fast retry schedule."""
    settings = Settings(
        database_url=await prepared_database(fresh_database),
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        webhook_allowed_networks="127.0.0.0/8",
        webhook_retry_schedule="0,0.2,0.2",
        webhook_timeout_seconds=5,
    )
    async with app_and_client(settings) as (_, client):
        yield client


@pytest.fixture
def receiver() -> Any:
    r = Receiver()
    yield r
    r.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def app_with_dataset(
    client: httpx.AsyncClient, scopes: list[str] = HOOK_SCOPES
) -> tuple[str, str, str, str]:
    """(org, dataset, app id, app key) for a fresh org owning a dataset and an app."""
    org = (await make_org(client))["name"]
    ds = (await make_dataset(client, org, primary_key="sku"))["name"]
    app = await make_app(client, org, scopes=scopes)
    key = (await make_key(client, app["id"]))["key"]
    return org, ds, app["id"], key


async def subscribe(
    client: httpx.AsyncClient, app_id: str, url: str, datasets: list[str], **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/apps/{app_id}/webhooks", json={"url": url, "datasets": datasets, **extra}
    )


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def arrived(receiver: Receiver, count: int, within: float = 15) -> list[Any]:
    """The receiver's accepted deliveries once there are ``count`` (without blocking the loop)."""

    async def enough() -> bool:
        return len(receiver.accepted()) >= count

    await eventually(enough, within)
    return receiver.accepted()


async def deliveries(
    client: httpx.AsyncClient, webhook_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_the_secret_is_shown_once(hooks: httpx.AsyncClient, receiver: Receiver) -> None:
    _, ds, app_id, _ = await app_with_dataset(hooks)
    created = await subscribe(hooks, app_id, receiver.url, [ds])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 32
    assert body["datasets"] == [ds]
    assert body["events"] == ["record.created", "record.updated", "record.deleted"]
    assert body["disabled"] is False
    shown = (await hooks.get(f"/v1/webhooks/{body['id']}")).json()
    listed = (await hooks.get(f"/v1/apps/{app_id}/webhooks")).json()
    assert "secret" not in shown
    assert [w["id"] for w in listed["data"]] == [body["id"]]
    assert body["secret"] not in str(listed)
    assert shown == {k: v for k, v in body.items() if k != "secret"}


async def test_listing_pages_with_a_cursor(hooks: httpx.AsyncClient, receiver: Receiver) -> None:
    _, ds, app_id, _ = await app_with_dataset(hooks)
    ids = [(await subscribe(hooks, app_id, receiver.url, [ds])).json()["id"] for _ in range(3)]
    first = (await hooks.get(f"/v1/apps/{app_id}/webhooks", params={"limit": 2})).json()
    second = (
        await hooks.get(
            f"/v1/apps/{app_id}/webhooks", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [w["id"] for w in first["data"] + second["data"]] == ids
    assert second["next_cursor"] is None


async def test_the_app_itself_needs_webhooks_manage(
    hooks: httpx.AsyncClient, receiver: Receiver
) -> None:
    org, ds, app_id, key = await app_with_dataset(hooks)
    reader = (await make_key(hooks, app_id, scopes=["changes:read"]))["key"]
    refused = await hooks.post(
        f"/v1/apps/{app_id}/webhooks",
        json={"url": receiver.url, "datasets": [ds]},
        headers=bearer(reader),
    )
    assert refused.status_code == 403, refused.text

    own = await hooks.post(
        f"/v1/apps/{app_id}/webhooks",
        json={"url": receiver.url, "datasets": [ds]},
        headers=bearer(key),
    )
    assert own.status_code == 201, own.text
    hook = own.json()["id"]
    assert (await hooks.get(f"/v1/webhooks/{hook}", headers=bearer(key))).status_code == 200
    assert (await hooks.get(f"/v1/webhooks/{hook}", headers=bearer(reader))).status_code == 403

    _, _, _, stranger = await app_with_dataset(hooks)
    for response in (
        await hooks.get(f"/v1/webhooks/{hook}", headers=bearer(stranger)),
        await hooks.get(f"/v1/apps/{app_id}/webhooks", headers=bearer(stranger)),
        await hooks.delete(f"/v1/webhooks/{hook}", headers=bearer(stranger)),
        await hooks.post(
            f"/v1/apps/{app_id}/webhooks",
            json={"url": receiver.url, "datasets": [ds]},
            headers=bearer(stranger),
        ),
    ):
        assert response.status_code == 404, response.text

    sibling = await make_app(hooks, org, scopes=["datasets:read"])
    sibling_key = (await make_key(hooks, sibling["id"]))["key"]
    assert (await hooks.get(f"/v1/webhooks/{hook}", headers=bearer(sibling_key))).status_code == 404
    org_admin = await make_app(hooks, org, scopes=["datasets:read", "admin"])
    admin_key = (await make_key(hooks, org_admin["id"]))["key"]
    assert (await hooks.get(f"/v1/webhooks/{hook}", headers=bearer(admin_key))).status_code == 200

    assert (await hooks.delete(f"/v1/webhooks/{hook}", headers=bearer(key))).status_code == 204
    assert (await hooks.get(f"/v1/webhooks/{hook}")).status_code == 404


async def test_the_app_must_be_able_to_follow_every_dataset(
    hooks: httpx.AsyncClient, receiver: Receiver
) -> None:
    _, ds, app_id, _ = await app_with_dataset(hooks)
    other_org = (await make_org(hooks))["name"]
    restricted = (await make_dataset(hooks, other_org, visibility="restricted"))["name"]
    public = (await make_dataset(hooks, other_org))["name"]
    response = await subscribe(hooks, app_id, receiver.url, [ds, restricted, "no-such-dataset"])
    assert response.status_code == 422, response.text
    assert [e["path"] for e in response.json()["errors"]] == ["/datasets/1", "/datasets/2"]
    assert (await subscribe(hooks, app_id, receiver.url, [public])).status_code == 201

    _, _, blind_app, _ = await app_with_dataset(hooks, scopes=["datasets:read", "records:read"])
    blind = await subscribe(hooks, blind_app, receiver.url, [public])
    assert blind.status_code == 422, "following a feed needs changes:read"
    twice = await subscribe(hooks, app_id, receiver.url, [ds, ds])
    assert twice.status_code == 422


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/hook",
        "http://user:password@127.0.0.1/hook",
        "http:///nohost",
        "http://127.0.0.1/hook#fragment",
        "http://10.0.0.7/hook",
        "http://192.168.1.20/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://224.0.0.1/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://does-not-resolve.invalid/hook",
        # IPv6 forms embedding a refused IPv4 address (127.0.0.0/8 is allowed here)
        "http://[2002:a9fe:a9fe::]/latest/meta-data",
        "http://[2002:c0a8:114::1]/hook",
        "http://[64:ff9b::a00:7]/hook",
        "http://[2606:4700:1:2:0:5efe:a00:7]/hook",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
        "http://[::10.0.0.7]/hook",
    ],
)
async def test_urls_outside_the_allow_list_are_refused(hooks: httpx.AsyncClient, url: str) -> None:
    _, ds, app_id, _ = await app_with_dataset(hooks)
    response = await subscribe(hooks, app_id, url, [ds])
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["path"] == "/url"


async def test_without_an_allow_list_loopback_is_refused(client: httpx.AsyncClient) -> None:
    _, ds, app_id, _ = await app_with_dataset(client)
    urls = ("http://127.0.0.1:9/hook", "http://localhost/hook", "https://127.1.2.3/")
    for url in (*urls, "http://[2002:7f00:1::]/hook", "http://[::ffff:127.0.0.1]/hook"):
        response = await subscribe(client, app_id, url, [ds])
        assert response.status_code == 422, response.text
        assert "ENTREPOT_WEBHOOK_ALLOWED_NETWORKS" in response.json()["detail"]


async def test_a_refusal_does_not_reveal_what_a_host_resolves_to(
    client: httpx.AsyncClient,
) -> None:
    """Otherwise creating webhooks would map the server's internal DNS."""
    _, ds, app_id, _ = await app_with_dataset(client)
    bodies = []
    # localhost resolves to loopback, .invalid never resolves, the last is a literal.
    for url in ("http://localhost/hook", "http://does-not-resolve.invalid/", "http://[::1]/"):
        response = await subscribe(client, app_id, url, [ds])
        assert response.status_code == 422, response.text
        assert re.search(r"\d+\.\d+\.\d+\.\d+|::", response.text) is None, response.text
        assert "resolve" not in response.text
        body = response.json()
        bodies.append((body["detail"], body["errors"]))
    assert bodies[0] == bodies[1] == bodies[2]


async def test_changes_are_audited(hooks: httpx.AsyncClient, receiver: Receiver) -> None:
    org, ds, app_id, key = await app_with_dataset(hooks)
    second = (await make_dataset(hooks, org))["name"]
    hook = (await subscribe(hooks, app_id, receiver.url + "&token=hush", [ds])).json()["id"]
    patched = await hooks.patch(
        f"/v1/webhooks/{hook}",
        json={"datasets": [second, ds], "events": ["record.deleted"], "disabled": True},
        headers=bearer(key),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["datasets"] == [second, ds]
    assert patched.json()["events"] == ["record.deleted"]
    assert patched.json()["disabled"] is True
    assert patched.json()["disabled_reason"] == f"disabled by app:{app_id}"
    resumed = await hooks.patch(f"/v1/webhooks/{hook}", json={"disabled": False})
    assert resumed.json()["disabled"] is False
    assert (await hooks.patch(f"/v1/webhooks/{hook}", json={"url": None})).status_code == 422
    rotated = await hooks.post(f"/v1/webhooks/{hook}/rotate-secret", json={})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["previous_secret_expires_at"] is not None
    assert (await hooks.delete(f"/v1/webhooks/{hook}")).status_code == 204

    audit = (await hooks.get("/v1/audit", params={"target": f"webhook:{hook}"})).json()["data"]
    assert sorted(e["action"] for e in audit) == [
        "webhook.created",
        "webhook.deleted",
        "webhook.secret_rotated",
        "webhook.updated",
        "webhook.updated",
    ]
    assert "hush" not in str(audit), "query strings (which may hold tokens) are not audited"
    assert f"app:{app_id}" in {e["actor"] for e in audit}, "the app's own change names it"


async def test_the_delivery_log_keeps_failures_for_retry_and_replay(
    hooks: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.respond = lambda: (500, b"x" * 5000)
    _, ds, app_id, _ = await app_with_dataset(hooks)
    created = (await subscribe(hooks, app_id, receiver.url, [ds])).json()
    receiver.secrets.append(created["secret"])
    hook = created["id"]
    for sku in ("a", "b"):
        written = await hooks.post(
            f"/v1/datasets/{ds}/records", json={"sku": sku, "name": sku, "price": 1}
        )
        assert written.status_code == 201, written.text

    async def both_failed() -> bool:
        return len(await deliveries(hooks, hook, status="failed")) == 2

    await eventually(both_failed)
    failed = await deliveries(hooks, hook)
    assert [d["status"] for d in failed] == ["failed", "failed"]
    assert {d["attempts"] for d in failed} == {3}, "the schedule 0,0.2,0.2 means three attempts"
    assert {d["last_status_code"] for d in failed} == {500}
    assert {len(d["last_response"]) for d in failed} == {1024}
    assert [d["seq"] for d in failed] == [2, 1], "newest first"
    assert failed[1]["payload"]["data"]["id"] == "a"
    assert failed[1]["payload"]["type"] == "record.created"
    assert len(receiver.snapshot()) == 6
    assert all(r.verified for r in receiver.snapshot())
    page = await hooks.get(f"/v1/webhooks/{hook}/deliveries", params={"limit": 1})
    rest = await hooks.get(
        f"/v1/webhooks/{hook}/deliveries", params={"limit": 1, "cursor": page.json()["next_cursor"]}
    )
    assert [d["id"] for d in page.json()["data"] + rest.json()["data"]] == [d["id"] for d in failed]

    receiver.respond = lambda: (200, b"thanks")
    retried = await hooks.post(f"/v1/webhooks/{hook}/deliveries/{failed[1]['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] in ("pending", "delivering", "delivered")

    async def delivered() -> bool:
        return len(await deliveries(hooks, hook, status="delivered")) == 1

    await eventually(delivered)
    [done] = await deliveries(hooks, hook, status="delivered")
    assert (done["id"], done["attempts"], done["last_response"]) == (failed[1]["id"], 1, "thanks")
    assert receiver.accepted()[-1].message_id == failed[1]["message_id"]

    replayed = await hooks.post(f"/v1/webhooks/{hook}/replay", json={"dataset": ds, "from_seq": 1})
    assert replayed.status_code == 200, replayed.text
    assert replayed.json() == {
        "enqueued": 2,
        "from_seq": 1,
        "through_seq": 2,
        "next_from_seq": None,
    }
    await arrived(receiver, 3)
    ids = [r.message_id for r in receiver.accepted()]
    assert sorted(ids[1:]) == sorted(d["message_id"] for d in failed), "replays keep webhook-ids"
    assert (
        await hooks.post(f"/v1/webhooks/{hook}/replay", json={"dataset": "nope", "from_seq": 1})
    ).status_code == 422
    unknown = await hooks.post(f"/v1/webhooks/{hook}/deliveries/{hook}/retry")
    assert unknown.status_code == 404


async def test_events_are_narrowed_like_the_apps_feed(
    hooks: httpx.AsyncClient, receiver: Receiver
) -> None:
    provider = (await make_org(hooks))["name"]
    ds = (await make_dataset(hooks, provider, primary_key="sku", visibility="restricted"))["name"]
    consumer = (await make_org(hooks))["name"]
    app = await make_app(hooks, consumer, scopes=HOOK_SCOPES)
    key = (await make_key(hooks, app["id"]))["key"]
    asked = await hooks.post(
        f"/v1/datasets/{ds}/access-requests",
        json={"app": app["id"], "scopes": ["datasets:read", "changes:read"], "reason": "sync"},
        headers=bearer(key),
    )
    assert asked.status_code == 201, asked.text
    approved = await hooks.post(
        f"/v1/access-requests/{asked.json()['id']}/approve",
        json={"fields": ["sku", "price"], "row_filter": {"price": {"lt": 50}}},
    )
    assert approved.status_code == 200, approved.text
    created = await subscribe(hooks, app["id"], receiver.url, [ds])
    assert created.status_code == 201, created.text
    receiver.secrets.append(created.json()["secret"])

    url = f"/v1/datasets/{ds}/records"
    await hooks.post(url, json={"sku": "a", "name": "hidden name", "price": 10, "region": "eu"})
    await hooks.patch(f"{url}/a", json={"price": 90})  # leaves the grant's rows
    await hooks.patch(f"{url}/a", json={"price": 20})  # and comes back
    accepted = await arrived(receiver, 3)
    feed = (await hooks.get(f"/v1/datasets/{ds}/changes", headers=bearer(key))).json()["changes"]
    assert [r.body["data"] for r in accepted] == [{"dataset": ds, **c} for c in feed]
    assert [r.body["type"] for r in accepted] == [
        "record.created",
        "record.deleted",
        "record.updated",
    ]
    assert accepted[0].body["data"]["data"] == {"sku": "a", "price": 10}
    assert accepted[1].body["data"]["data"] is None
    assert all(r.verified for r in accepted)
    assert "hidden name" not in str([r.raw for r in receiver.snapshot()])


async def test_readiness_and_metrics_report_the_queue(hooks: httpx.AsyncClient) -> None:
    ready = await hooks.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["webhooks"] == "ok"
    metrics = generate_latest().decode()
    for name in (
        "entrepot_webhook_deliveries_total",
        "entrepot_webhook_queue_depth",
        "entrepot_webhook_oldest_pending_age_seconds",
        "entrepot_webhook_feed_lag_events",
    ):
        assert name in metrics


async def test_a_host_name_is_resolved_checked_and_sent_as_host(
    hooks: httpx.AsyncClient, receiver: Receiver
) -> None:
    port = receiver.server.server_address[1]
    _, ds, app_id, _ = await app_with_dataset(hooks)
    created = await subscribe(hooks, app_id, f"http://localhost:{port}/hook", [ds])
    assert created.status_code == 201, created.text
    receiver.secrets.append(created.json()["secret"])
    await hooks.post(f"/v1/datasets/{ds}/records", json={"sku": "h", "name": "h", "price": 1})
    [got] = await arrived(receiver, 1)
    assert got.headers["host"] == f"localhost:{port}"
    assert got.verified


# --- the pure parts ------------------------------------------------------------------


def test_signatures_match_the_reference_library() -> None:
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook as Reference

    from entrepot.webhooks import signing

    secret = signing.new_secret()
    body = b'{"type":"record.created","data":{"x":"\xc3\xa9"}}'
    ours = signing.sign(secret, "msg_1", 1_700_000_000, body)
    theirs = Reference(secret).sign(
        "msg_1", datetime.fromtimestamp(1_700_000_000, UTC), body.decode()
    )
    assert ours == theirs


def test_retry_timing() -> None:
    from entrepot.webhooks.config import RETRY_AFTER_CAP_SECONDS, parse_schedule
    from entrepot.webhooks.worker import next_delay, retry_after_seconds

    assert parse_schedule("0, 5,300") == (0.0, 5.0, 300.0)
    for bad in ("", "a,b", "-1", "nan"):
        with pytest.raises(ValueError, match="RETRY_SCHEDULE"):
            parse_schedule(bad)
    schedule = (0.0, 10.0, 100.0)
    delays = [next_delay(schedule, 1, None) for _ in range(200)]
    assert all(d is not None and 9.0 <= d <= 11.0 for d in delays), "±10% jitter"
    assert len(set(delays)) > 100
    assert next_delay(schedule, 3, None) is None, "exhausted after len(schedule) attempts"
    assert next_delay(schedule, 1, 60.0) == 60.0, "Retry-After lengthens the wait"
    assert next_delay(schedule, 1, 10**9) == RETRY_AFTER_CAP_SECONDS
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None


async def test_deleting_a_followed_dataset_shows_on_the_webhook(
    hooks: httpx.AsyncClient, receiver: Receiver
) -> None:
    org, first, app_id, key = await app_with_dataset(hooks)
    second = (await make_dataset(hooks, org, primary_key="sku"))["name"]
    created = await subscribe(hooks, app_id, receiver.url, [first, second])
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["removed_datasets"] == []

    assert (await hooks.delete(f"/v1/datasets/{first}")).status_code == 204
    state = (await hooks.get(f"/v1/webhooks/{hook['id']}", headers=bearer(key))).json()
    assert state["datasets"] == [second]
    assert [(r["dataset"], r["reason"]) for r in state["removed_datasets"]] == [
        (first, "the dataset was deleted")
    ]
    assert state["disabled"] is False  # it still follows one

    assert (await hooks.delete(f"/v1/datasets/{second}")).status_code == 204
    state = (await hooks.get(f"/v1/webhooks/{hook['id']}", headers=bearer(key))).json()
    assert state["datasets"] == []
    assert [r["dataset"] for r in state["removed_datasets"]] == [first, second]
    assert state["disabled"] is True
    assert second in state["disabled_reason"]

    audit = await hooks.get(
        "/v1/audit", params={"action": "webhook.dataset_removed", "target": f"webhook:{hook['id']}"}
    )
    assert audit.status_code == 200, audit.text
    assert [e["details"]["dataset"] for e in audit.json()["data"]] == [second, first]


async def _claim(
    pool: asyncpg.Pool, limit: int, conn: asyncpg.Connection | None = None
) -> tuple[uuid.UUID, list[int]]:
    """One claim of up to ``limit`` deliveries (on ``conn``, left in its transaction, if given)."""
    lease = uuid.uuid4()
    if conn is not None:
        return lease, [r.seq for r in await queue_repo.claim(conn, lease, 60.0, limit)]
    async with pool.acquire() as own, own.transaction():
        return lease, [r.seq for r in await queue_repo.claim(own, lease, 60.0, limit)]


async def _finish(
    pool: asyncpg.Pool, seq: int, lease: uuid.UUID, status: str, retry_in: float | None = None
) -> bool:
    delivery_id = await pool.fetchval("SELECT id FROM webhook_deliveries WHERE seq = $1", seq)
    return await queue_repo.finish(
        pool,
        delivery_id,
        lease,
        status=status,
        status_code=200 if status == "delivered" else 500,
        error=None,
        response=None,
        retry_in=retry_in,
    )


async def test_a_claim_takes_a_batch_holding_each_records_next_event_only(
    fresh_database: Callable[[], Awaitable[str]],
) -> None:
    """Batched claims keep the queue's promises: one statement takes up to N due deliveries,
    oldest due first, at most one per record and never one whose predecessor is pending or
    in flight; rows another claimer holds are skipped; leases, retries and expiry hold."""
    settings = Settings(
        database_url=await prepared_database(fresh_database),
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        webhook_allowed_networks="127.0.0.0/8",
        webhook_retry_schedule="3600",  # nothing falls due by itself: the test says when
    )
    async with app_and_client(settings) as (app, client):
        _, ds, app_id, _ = await app_with_dataset(client)
        hook = (await subscribe(client, app_id, "http://127.0.0.1:9/hook", [ds])).json()["id"]
        for sku, versions in (("a", 3), ("b", 2), ("c", 1)):  # seqs a: 1-3, b: 4-5, c: 6
            for price in range(versions):
                written = await client.put(
                    f"/v1/datasets/{ds}/records/{sku}",
                    json={"sku": sku, "name": sku, "price": price},
                )
                assert written.status_code in (200, 201), written.text

        async def queued() -> bool:
            return len(await deliveries(client, hook)) == 6

        await eventually(queued)
        await app.state.components.get(
            WebhookRuntime
        ).worker.stop()  # from here on the test claims by hand
        pool: asyncpg.Pool = app.state.components.get(asyncpg.Pool)
        await pool.execute(  # all due, the lower seqs longer ago
            "UPDATE webhook_deliveries "
            "SET next_attempt_at = now() - make_interval(secs => 100 - seq)"
        )

        async with pool.acquire() as held, held.transaction():
            first, seqs = await _claim(pool, 1, held)
            assert seqs == [1]
            # While that claim is uncommitted its row is skipped, and a's next event waits.
            second, seqs = await _claim(pool, 10)
            assert seqs == [4, 6]
        assert (await _claim(pool, 10))[1] == [], "every record's next event is in flight"

        assert await _finish(pool, 1, first, "delivered")
        assert (await _claim(pool, 10))[1] == [2], "a's next event, and only that one"
        # One lease covers a batch: each of its deliveries is finished with it.
        assert await _finish(pool, 4, second, "pending", retry_in=3600)
        assert (await _claim(pool, 10))[1] == [], "b's retry is not due; 5 waits behind it"

        await pool.execute("UPDATE webhook_deliveries SET locked_until = now() WHERE seq = 6")
        third, seqs = await _claim(pool, 10)
        assert seqs == [6], "an expired lease is claimed again"
        assert not await _finish(pool, 6, second, "delivered"), "the old lease no longer holds"
        assert await _finish(pool, 6, third, "delivered")

        statuses = {d["seq"]: (d["status"], d["attempts"]) for d in await deliveries(client, hook)}
        assert statuses == {
            1: ("delivered", 1),
            2: ("delivering", 0),
            3: ("pending", 0),
            4: ("pending", 1),
            5: ("pending", 0),
            6: ("delivered", 1),
        }


async def test_an_attempt_cut_short_by_shutdown_is_handed_back_at_once(
    fresh_database: Callable[[], Awaitable[str]],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replica stopping while its receiver hangs does not leave the delivery locked
    for its lease: another replica may take it at once (and sends it again)."""
    monkeypatch.setattr(worker_module, "DRAIN_SECONDS", 0.2)
    answer = threading.Event()

    def hang() -> tuple[int, bytes]:
        answer.wait(60)
        return 200, b"ok"

    receiver.respond = hang
    url = await prepared_database(fresh_database)
    settings = Settings(
        database_url=url,
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        webhook_allowed_networks="127.0.0.0/8",
        webhook_timeout_seconds=30,
    )
    db = await asyncpg.connect(url)
    try:
        async with app_and_client(settings) as (_, client):
            _, ds, app_id, _ = await app_with_dataset(client)
            hook = await subscribe(client, app_id, receiver.url, [ds])
            assert hook.status_code == 201, hook.text
            put = await client.put(
                f"/v1/datasets/{ds}/records/a", json={"sku": "a", "name": "A", "price": 1}
            )
            assert put.status_code == 201, put.text

            async def in_flight() -> bool:
                return bool(
                    await db.fetchval(
                        "SELECT locked_until > now() + interval '10 seconds' "
                        "FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'delivering'",
                        uuid.UUID(hook.json()["id"]),
                    )
                )

            await until(in_flight, "the delivery claimed, its attempt hanging")
        row = await db.fetchrow(
            "SELECT status, locked_until <= now() AS claimable FROM webhook_deliveries "
            "WHERE webhook_id = $1",
            uuid.UUID(hook.json()["id"]),
        )
        assert (row["status"], row["claimable"]) == ("delivering", True)
    finally:
        answer.set()
        await db.close()


async def test_a_hanging_endpoint_holds_only_its_own_slots(
    hooks: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Two endpoints follow one dataset; one never answers within the attempt's time
    limit. The other still gets every event at once, and the hanging one never has more
    deliveries in flight than its own limit."""
    hanging = Receiver()
    release = threading.Event()
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most at once

    def hang() -> tuple[int, bytes]:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        release.wait(30)
        with lock:
            in_flight[0] -= 1
        return 200, b"late"

    hanging.respond = hang
    try:
        _, ds, app_id, _ = await app_with_dataset(hooks)
        for url in (hanging.url, receiver.url):
            assert (await subscribe(hooks, app_id, url, [ds])).status_code == 201
        started = time.monotonic()
        for n in range(20):
            written = await hooks.put(
                f"/v1/datasets/{ds}/records/r{n}", json={"sku": f"r{n}", "name": "R", "price": n}
            )
            assert written.status_code == 201, written.text
        # Sooner than one attempt's time limit (5 s): no slot a hanging attempt held came back.
        got = await arrived(receiver, 20, within=4.5)
        assert sorted(d.body["data"]["id"] for d in got) == sorted(f"r{n}" for n in range(20))
        assert time.monotonic() - started < 5
        with lock:
            most = in_flight[1]
        assert 1 <= most <= INITIAL
    finally:
        release.set()
        hanging.close()


async def test_endpoints_that_keep_their_slots_busy_leave_slots_for_the_others(
    fresh_database: Callable[[], Awaitable[str]], receiver: Receiver
) -> None:
    """Two endpoints answer every delivery in 0.5 s: slow enough to keep every slot they
    get busy, quick enough never to have their limit halved, each with a backlog of 150
    events. With 8 slots a worker, taken first come, first served, they held all 8 and
    took each slot back as it freed, so a third endpoint's events waited behind both
    backlogs (150 x 2 x 0.5 s / 8 slots, about 19 s). Each endpoint now takes at most
    half of what the others leave, and a claim takes every endpoint's next event in
    turn: the third endpoint's events wait one busy attempt at most."""
    settings = Settings(
        database_url=await prepared_database(fresh_database),
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        webhook_allowed_networks="127.0.0.0/8",
        webhook_timeout_seconds=5,
        webhook_concurrency=8,
        webhook_endpoint_concurrency=8,
    )

    def busy() -> tuple[int, bytes]:
        time.sleep(0.5)  # the endpoint's own latency, not a wait for a condition
        return 200, b"ok"

    busy_receivers = [Receiver(respond=busy), Receiver(respond=busy)]
    try:
        async with app_and_client(settings) as (_, client):
            org, busy_ds, app_id, _ = await app_with_dataset(client)
            quick_ds = (await make_dataset(client, org, primary_key="sku"))["name"]
            for busy_receiver in busy_receivers:
                made = await subscribe(client, app_id, busy_receiver.url, [busy_ds])
                assert made.status_code == 201, made.text
            made = await subscribe(client, app_id, receiver.url, [quick_ds])
            assert made.status_code == 201, made.text
            body = ndjson(*({"sku": f"r{n}", "name": "R", "price": n} for n in range(150)))
            imported = await post_import(client, busy_ds, body)
            assert imported.status_code == 200, imported.text

            async def both_busy() -> bool:
                return all(len(r.snapshot()) >= 2 for r in busy_receivers)

            await until(both_busy, "both busy endpoints are being delivered to", within=30)
            started = time.monotonic()
            for n in range(5):
                written = await client.put(
                    f"/v1/datasets/{quick_ds}/records/q{n}",
                    json={"sku": f"q{n}", "name": "Q", "price": n},
                )
                assert written.status_code == 201, written.text
            got = await arrived(receiver, 5, within=30)
            waited = time.monotonic() - started
            assert sorted(d.body["data"]["id"] for d in got) == [f"q{n}" for n in range(5)]
            assert waited < 4, f"the quick endpoint waited {waited:.1f} s behind the busy ones"
            assert len(busy_receivers[0].snapshot()) + len(busy_receivers[1].snapshot()) < 300
    finally:
        for busy_receiver in busy_receivers:
            busy_receiver.close()


def _closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_endpoint_that_is_down_does_not_slow_the_others(
    fresh_database: Callable[[], Awaitable[str]], receiver: Receiver
) -> None:
    """One endpoint refuses connections while its events pile up: many versions of each
    record, all queued behind the record's first event waiting for its retry. They wait
    with it (due no sooner than the retry), so no claim reads them meanwhile; before,
    every claim, for every endpoint, walked them all (bench/webhooks.py's outage scenario
    fell behind that way). Another endpoint's chain of events on one record, each
    needing a claim of its own, arrives meanwhile."""
    url = await prepared_database(fresh_database)
    settings = Settings(
        database_url=url,
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        webhook_allowed_networks="127.0.0.0/8",
        webhook_retry_schedule="0,3600",  # the first attempt at once, the retry much later
        webhook_timeout_seconds=5,
    )
    records, versions = 100, 30
    db = await asyncpg.connect(url)
    try:
        async with app_and_client(settings) as (_, client):
            org, down_ds, app_id, _ = await app_with_dataset(client)
            up_ds = (await make_dataset(client, org, primary_key="sku"))["name"]
            down = await subscribe(client, app_id, f"http://127.0.0.1:{_closed_port()}/", [down_ds])
            assert down.status_code == 201, down.text
            up = await subscribe(client, app_id, receiver.url, [up_ds])
            assert up.status_code == 201, up.text
            down_id = uuid.UUID(down.json()["id"])

            for version in range(versions):
                body = ndjson(
                    *({"sku": f"r{n}", "name": "R", "price": version} for n in range(records))
                )
                imported = await post_import(client, down_ds, body, mode="upsert")
                assert imported.status_code == 200, imported.text

            async def backlog() -> asyncpg.Record | None:
                row = await db.fetchrow(
                    "SELECT count(*) AS queued,"
                    " count(*) FILTER (WHERE attempts > 0) AS retrying,"
                    " count(*) FILTER (WHERE next_attempt_at <= now()) AS due "
                    "FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'pending'",
                    down_id,
                )
                assert row is not None
                held_back = row["due"] == 0
                done = row["queued"] == records * versions and row["retrying"] == records
                return row if done and held_back else None

            # Within a stats round (5 s), those queued while their record's attempt was
            # being recorded are held back too.
            await until(
                backlog, "every event queued behind its record's retry, none due", within=30
            )

            started = time.monotonic()
            chain = 20
            for price in range(chain):
                written = await client.put(
                    f"/v1/datasets/{up_ds}/records/a",
                    json={"sku": "a", "name": "A", "price": price},
                )
                assert written.status_code in (200, 201), written.text
            got = await arrived(receiver, chain, within=30)
            assert [d.body["data"]["version"] for d in got] == list(range(1, chain + 1))
            assert time.monotonic() - started < 15, "the other endpoint's deliveries were held up"
    finally:
        await db.close()


def _rows_read(plan: dict[str, Any], table: str = "webhook_deliveries") -> int:
    """Rows the plan's scans of ``table`` returned and removed by filters, over all loops."""
    node = plan
    read = 0
    if node.get("Relation Name") == table and "Scan" in node["Node Type"]:
        loops = node["Actual Loops"]
        read += (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * loops
    for child in node.get("Plans", []):
        read += _rows_read(child, table)
    return read


async def test_a_claim_reads_what_it_takes_whatever_the_statistics(
    fresh_database: Callable[[], Awaitable[str]],
) -> None:
    """Statistics taken while the queue was empty (it swings from empty to thousands of rows
    within seconds) must not make a claim walk the queue: with 3,000 due deliveries for one
    of 50 webhooks, a claim of 4 reads a few rows per webhook, not the queue per webhook
    (which it did along the former global index on next_attempt_at: 107 ms a claim)."""
    settings = Settings(
        database_url=await prepared_database(fresh_database),
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        webhook_allowed_networks="127.0.0.0/8",
    )
    async with app_and_client(settings) as (app, client):
        _, ds, app_id, _ = await app_with_dataset(client)
        hooks = []
        for n in range(50):
            created = await subscribe(client, app_id, f"http://127.0.0.1:9/{n}", [ds])
            assert created.status_code == 201, created.text
            hooks.append(uuid.UUID(created.json()["id"]))
        await app.state.components.get(WebhookRuntime).worker.stop()  # the test claims
        pool: asyncpg.Pool = app.state.components.get(asyncpg.Pool)
        dataset_id = await pool.fetchval("SELECT id FROM datasets WHERE name = $1", ds)
        insert = (
            "INSERT INTO webhook_deliveries (webhook_id, dataset_id, seq, record_id, event,"
            " message_id, payload, status) SELECT $1, $2, g, 'r' || g, 'record.updated',"
            " 'm' || g, '{}', $4 FROM generate_series($3::bigint, $3 + 2999) AS g"
        )
        await pool.execute(insert, hooks[0], dataset_id, 1, "delivered")
        await pool.execute("ANALYZE webhook_deliveries")  # an idle queue's statistics
        await pool.execute(insert, hooks[0], dataset_id, 10_001, "pending")

        async with pool.acquire() as conn, conn.transaction():
            await plan_for_values(conn)
            plan = await conn.fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + queue_repo.CLAIM,
                uuid.uuid4(),
                60.0,
                256,
                4,
                hooks,
                [4] * len(hooks),
                column=0,
            )
            claimed = await conn.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivering'"
            )
        assert claimed == 4
        read = _rows_read(orjson.loads(plan)[0]["Plan"])
        assert read < 100, f"a claim of 4 read {read} deliveries"
