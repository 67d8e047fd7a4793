"""Record routes answer the same served directly as through FastAPI's router.

Two replicas on one store, one as served and one with its direct routes
taken out, get the same requests from the same callers (admin, a narrowed
grantee, an outsider, no or a bad credential) for every kind of id, and must
answer alike: status, body and headers (but the request id and the date).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.app import create_app
from entrepot.direct_routes import DirectRoute
from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.factories import granted, make_app, make_dataset, make_key, make_org
from tests.integration.edge_helpers import requests_total, routed_only

RECORD_ROUTE = "/v1/datasets/{ds}/records/{record_id}"

SCHEMA = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "price": {"type": "number"},
        "cost": {"type": "number"},
    },
    "required": ["sku"],
}
ADDRESSES = (f"198.51.100.{n % 250 + 1}" for n in itertools.count())


@dataclass
class World:
    ds: str
    public_ds: str
    callers: dict[str, dict[str, str]]
    etag: str


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient) -> World:
    provider = (await make_org(client))["name"]
    consumer = (await make_org(client))["name"]
    ds = (
        await make_dataset(
            client, provider, schema=SCHEMA, primary_key="sku", visibility="restricted"
        )
    )["name"]
    public_ds = (await make_dataset(client, provider, schema=SCHEMA, primary_key="sku"))["name"]
    for name in (ds, public_ds):
        for sku, price in (("a", 10), ("b", 500), ("é ü ?#%", 1)):
            created = await client.post(
                f"/v1/datasets/{name}/records", json={"sku": sku, "price": price, "cost": 7}
            )
            assert created.status_code == 201, created.text
    owner = await make_app(client, provider, scopes=["datasets:read", "admin"])
    owner_key = (await make_key(client, owner["id"]))["key"]
    grantee = await make_app(client, consumer)
    grantee_key = (await make_key(client, grantee["id"]))["key"]
    await granted(
        client,
        ds,
        grantee["id"],
        grantee_key,
        owner_key,
        fields=["sku", "price"],
        row_filter={"price": {"lt": 100}},
    )
    outsider = await make_app(client, (await make_org(client))["name"])
    outsider_key = (await make_key(client, outsider["id"]))["key"]
    etag = (await client.get(f"/v1/datasets/{ds}/records/a")).headers["etag"]
    return World(
        ds=ds,
        public_ds=public_ds,
        callers={
            "admin": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
            "grantee": {"Authorization": f"Bearer {grantee_key}"},
            "outsider": {"Authorization": f"Bearer {outsider_key}"},
            "none": {},
            "bad": {"Authorization": "Bearer ent_nobody_issued_this"},
            "malformed": {"Authorization": "Basic Zm9vOmJhcg=="},
        },
        etag=etag,
    )


@pytest.fixture(scope="module")
async def pair(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(direct, routed): the same platform as served and through FastAPI's router only."""
    async with AsyncExitStack() as stack:
        clients = []
        for direct in (True, False):
            app = create_app(settings)
            if not direct:
                routed_only(app)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=(next(ADDRESSES), 1234))
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://t")
                )
            )
        yield clients[0], clients[1]


# What two apps' own rate-limit buckets may tell apart (an anonymous caller's 401 is
# rate limited too: the routes that read datasets admit anonymous callers first).
UNCOMPARED = frozenset({"date", "ratelimit-remaining", "ratelimit-reset"})


def comparable(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in UNCOMPARED)
    return response.status_code, response.content, headers


async def same_answer(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], path: str, headers: dict[str, str]
) -> httpx.Response:
    direct, routed = pair
    headers = {**headers, "X-Request-ID": "direct-equivalence"}  # problem bodies echo it
    a = await direct.get(path, headers=headers)
    b = await routed.get(path, headers=headers)
    assert comparable(a) == comparable(b), (path, headers)
    return a


async def test_every_caller_gets_the_same_answer_either_way(
    world: World, pair: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    seen = set()
    for caller, headers in world.callers.items():
        for ds in (world.ds, world.public_ds, "no-such-dataset"):
            for record in ("a", "b", quote("é ü ?#%", safe=""), "missing", "%2e%2e", "x" * 300):
                response = await same_answer(pair, f"/v1/datasets/{ds}/records/{record}", headers)
                seen.add((caller, response.status_code))
    assert {("admin", 200), ("grantee", 200), ("grantee", 404), ("outsider", 404)} <= seen
    assert {("none", 401), ("bad", 401), ("malformed", 401)} <= seen


async def test_conditional_gets_match(
    world: World, pair: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    path = f"/v1/datasets/{world.ds}/records/a"
    admin = world.callers["admin"]
    response = await same_answer(pair, path, {**admin, "If-None-Match": world.etag})
    assert response.status_code == 304
    await same_answer(pair, path, {**admin, "If-None-Match": '"stale", ' + world.etag})
    await same_answer(pair, path, {**admin, "If-None-Match": "*"})
    await same_answer(pair, path, {**admin, "If-None-Match": "garbage"})


async def test_head_gets_the_same_answer_either_way(
    world: World, pair: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    """HEAD is GET without the body on both paths: the direct route serves it too."""
    direct, routed = pair
    for caller in ("admin", "grantee", "outsider", "none"):
        for record in ("a", "b", "missing"):
            path = f"/v1/datasets/{world.ds}/records/{record}"
            headers = {**world.callers[caller], "X-Request-ID": "direct-equivalence"}
            a = await direct.head(path, headers=headers)
            assert comparable(a) == comparable(await routed.head(path, headers=headers))
            assert a.content == b""
    conditional = {
        **world.callers["admin"],
        "If-None-Match": world.etag,
        "X-Request-ID": "direct-equivalence",
    }
    path = f"/v1/datasets/{world.ds}/records/a"
    a = await direct.head(path, headers=conditional)
    assert a.status_code == 304
    assert comparable(a) == comparable(await routed.head(path, headers=conditional))


async def test_metrics_count_a_direct_request_under_its_route_template(
    world: World, pair: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    direct, _ = pair
    before = requests_total("GET", RECORD_ROUTE, 200)
    response = await direct.get(
        f"/v1/datasets/{world.ds}/records/a", headers=world.callers["admin"]
    )
    assert response.status_code == 200
    assert requests_total("GET", RECORD_ROUTE, 200) == before + 1


async def test_lists_and_their_errors_match(
    world: World, pair: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    for caller in ("admin", "grantee", "outsider", "none"):
        for query in ("", "?limit=2", "?filter[price][lt]=100&sort=-price", "?limit=0", "?bogus=1"):
            await same_answer(
                pair, f"/v1/datasets/{world.ds}/records{query}", world.callers[caller]
            )


async def test_a_method_the_route_does_not_serve_is_the_routers_405(
    world: World, pair: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    direct, routed = pair
    path = f"/v1/datasets/{world.ds}/records/a"
    headers = {**world.callers["admin"], "X-Request-ID": "direct-equivalence"}
    a = await direct.post(path, headers=headers, json={})
    assert a.status_code == 405
    assert comparable(a) == comparable(await routed.post(path, headers=headers, json={}))


async def test_record_routes_are_served_directly(settings: Settings) -> None:
    """Every record and bulk route is a direct one, matched before the router's."""
    app = create_app(settings)
    direct = [r for r in app.router.routes if isinstance(r, DirectRoute)]
    assert app.router.routes[: len(direct)] == direct
    served = {(r.path, m) for r in direct for m in r.declared.methods}
    assert {
        (RECORD_ROUTE, "GET"),
        (RECORD_ROUTE, "PUT"),
        (RECORD_ROUTE, "PATCH"),
        (RECORD_ROUTE, "DELETE"),
        ("/v1/datasets/{ds}/records", "GET"),
        ("/v1/datasets/{ds}/records", "POST"),
        ("/v1/datasets/{ds}/import", "POST"),
        ("/v1/datasets/{ds}/export", "GET"),
    } == served


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(record=st.text(min_size=1, max_size=40), caller=st.sampled_from(["admin", "grantee"]))
async def test_any_id_gets_the_same_answer(
    world: World, pair: tuple[httpx.AsyncClient, httpx.AsyncClient], record: str, caller: str
) -> None:
    path = f"/v1/datasets/{world.ds}/records/{quote(record, safe='')}"
    await same_answer(pair, path, world.callers[caller])
