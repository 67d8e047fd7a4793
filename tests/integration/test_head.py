"""HEAD answers on every GET route, as GET without a body (API.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from entrepot.app import create_app
from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.factories import app_on_plan, make_dataset, make_plan
from tests.integration.bulk_helpers import ndjson, post_import
from tests.integration.edge_helpers import (
    call_asgi,
    captured_logs,
    events,
    http_scope,
    requests_total,
    routed_only,
)

RECORD_ROUTE = "/v1/datasets/{ds}/records/{record_id}"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PROMPTLY = 10.0  # seconds; a streamed body sent whole (SSE: never ending) would take longer


@pytest.fixture(scope="module")
async def routed_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The platform through FastAPI's router only (no direct routes), on a one-connection
    pool (a leak would block it)."""
    app = routed_only(
        create_app(settings.model_copy(update={"pool_min_size": 1, "pool_max_size": 1}))
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def routed(routed_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=routed_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=ADMIN) as c:
        yield c


@pytest.fixture(scope="module")
async def ds(client: httpx.AsyncClient) -> str:
    name: str = (await make_dataset(client, primary_key="sku"))["name"]
    rows = [{"sku": f"s{n}", "name": "x" * 50, "price": n} for n in range(3000)]
    imported = await post_import(client, name, ndjson(*rows))
    assert imported.status_code == 200, imported.text
    return name


def without_body(head: httpx.Response, get: httpx.Response) -> None:
    """``head`` is ``get`` without its body: same status and headers, Content-Length included."""
    assert head.content == b""
    assert head.status_code == get.status_code

    def headers(r: httpx.Response) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in r.headers.items() if k != "date")

    assert headers(head) == headers(get)


async def same_but_body(c: httpx.AsyncClient, path: str, **kwargs: object) -> httpx.Response:
    get = await c.get(path, headers={"X-Request-ID": "head-vs-get"}, **kwargs)  # type: ignore[arg-type]
    head = await c.head(path, headers={"X-Request-ID": "head-vs-get"}, **kwargs)  # type: ignore[arg-type]
    without_body(head, get)
    return head


async def test_head_on_one_record_either_path_is_get_without_body(
    client: httpx.AsyncClient, routed: httpx.AsyncClient, ds: str
) -> None:
    path = f"/v1/datasets/{ds}/records/s1"
    for c in (client, routed):
        head = await same_but_body(c, path)
        assert head.status_code == 200
        assert int(head.headers["Content-Length"]) > 0
        assert head.headers["ETag"]
        not_modified = await c.head(path, headers={"If-None-Match": head.headers["ETag"]})
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        assert (await same_but_body(c, f"/v1/datasets/{ds}/records/missing")).status_code == 404


async def test_head_keeps_its_method_in_metrics_and_logs(
    client: httpx.AsyncClient, ds: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = requests_total("HEAD", RECORD_ROUTE, 200)
    with captured_logs(monkeypatch) as logs:
        assert (await client.head(f"/v1/datasets/{ds}/records/s1")).status_code == 200
    assert requests_total("HEAD", RECORD_ROUTE, 200) == before + 1
    [access] = events(logs, "request")
    assert (access["method"], access["route"], access["status"]) == ("HEAD", RECORD_ROUTE, 200)


async def test_head_on_lists_datasets_and_health(
    client: httpx.AsyncClient, routed: httpx.AsyncClient, ds: str
) -> None:
    for c in (client, routed):
        for path in (
            f"/v1/datasets/{ds}/records?limit=5",
            f"/v1/datasets/{ds}",
            "/v1/datasets",
            f"/v1/datasets/{ds}/changes?after=0&limit=5",
            "/healthz",
            "/openapi.json",
        ):
            assert (await same_but_body(c, path)).status_code == 200, path
        assert (await same_but_body(c, "/v1/nowhere")).status_code == 404


async def test_head_where_get_is_not_allowed_is_405_with_allow(client: httpx.AsyncClient) -> None:
    for path in ("/oauth/token", "/v1/datasets/some-ds/import"):
        head = await same_but_body(client, path)
        assert head.status_code == 405, path
        assert head.headers["Allow"] == "POST"


async def test_head_on_an_export_stops_at_the_headers_and_frees_the_connection(
    routed: httpx.AsyncClient, routed_app: FastAPI, ds: str
) -> None:
    path = f"/v1/datasets/{ds}/export"
    head = await asyncio.wait_for(routed.head(path), PROMPTLY)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"].startswith("application/x-ndjson")
    assert head.headers["X-Entrepot-Seq"]
    assert "attachment" in head.headers["Content-Disposition"]
    # One pooled connection: had the export kept it, this would wait forever.
    after = await asyncio.wait_for(routed.get(f"/v1/datasets/{ds}/records/s2"), PROMPTLY)
    assert after.status_code == 200
    async with routed_app.state.components.get(asyncpg.Pool).acquire(timeout=PROMPTLY):
        pass  # and the pool has its one connection to lend


async def test_head_on_the_export_sends_the_start_and_an_empty_body_only(
    routed_app: FastAPI, ds: str
) -> None:
    scope = http_scope(
        "HEAD", f"/v1/datasets/{ds}/export", [("authorization", ADMIN["Authorization"])]
    )
    sent = await asyncio.wait_for(call_asgi(routed_app, scope, []), PROMPTLY)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert sent[1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_head_on_the_event_stream_returns_with_the_headers(
    routed: httpx.AsyncClient, ds: str
) -> None:
    stream = await asyncio.wait_for(
        routed.head(f"/v1/datasets/{ds}/changes", headers={"Accept": "text/event-stream"}),
        PROMPTLY,
    )
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.content == b""


async def test_head_is_rate_limited_like_get(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, ds: str
) -> None:
    plan = await make_plan(client, rate_per_second=0.01, burst=3)
    _, key = await app_on_plan(client, plan)
    auth = {"Authorization": f"Bearer {key}"}
    path = f"/v1/datasets/{ds}/records/s1"
    for method, remaining in (("HEAD", 2), ("GET", 1), ("HEAD", 0)):
        ok = await anon.request(method, path, headers=auth)
        assert ok.status_code == 200, (method, ok.text)
        assert ok.headers["RateLimit-Remaining"] == str(remaining)
    refused = await anon.head(path, headers=auth)
    assert refused.status_code == 429
    assert refused.content == b""
    assert refused.headers["Retry-After"]
