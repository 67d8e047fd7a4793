"""What every response shares: auth, request ids, problem documents, limits."""

from __future__ import annotations

import httpx
from prometheus_client import generate_latest

from tests.factories import make_dataset


async def test_missing_credential_is_401_with_challenge(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/v1/apps")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert {"type", "title", "status", "detail"} <= doc.keys()


async def test_bad_credential_is_401(anon: httpx.AsyncClient) -> None:
    for header in ("Bearer nope", "Basic Zm9vOmJhcg==", "Bearer ", "Bearer\x00x"):
        try:
            response = await anon.get("/v1/datasets", headers={"Authorization": header})
        except httpx.LocalProtocolError:
            continue  # the client refuses to send it at all
        assert response.status_code == 401, header


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    generated = await client.get("/v1/datasets/nope")
    assert len(generated.headers["X-Request-ID"]) == 32
    assert generated.json()["request_id"] == generated.headers["X-Request-ID"]
    unsafe = await client.get("/healthz", headers={"X-Request-ID": "a b\tc"})
    assert unsafe.headers["X-Request-ID"] != "a b\tc"


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client))["name"]
    big = {"sku": "x", "name": "y" * 300_000, "price": 1}
    response = await client.post(f"/v1/datasets/{ds}/records", json=big)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_unsupported_content_type_is_415(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client))["name"]
    response = await client.post(
        f"/v1/datasets/{ds}/records", content=b"sku=x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


async def test_malformed_json_is_400_problem(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client))["name"]
    for body in (b"{", b"NaN", b'{"a": 1e400}', b"\xff\xfe"):
        response = await client.post(
            f"/v1/datasets/{ds}/records", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code in (400, 422), body
        assert response.headers["content-type"] == "application/problem+json"


async def test_unstorable_strings_are_422_with_path(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client))["name"]
    response = await client.post(
        f"/v1/datasets/{ds}/records",
        content=b'{"sku": "x", "name": "a\\u0000b", "price": 1}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "/name"


async def test_big_integers_are_kept_exactly(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client, schema={"type": "object"}))["name"]
    body = b'{"n": 123456789012345678901234567890}'
    created = await client.post(
        f"/v1/datasets/{ds}/records", content=body, headers={"Content-Type": "application/json"}
    )
    assert created.status_code == 201
    fetched = await client.get(created.headers["Location"])
    assert b"123456789012345678901234567890" in fetched.content


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nowhere")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = await client.put("/v1/datasets")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"


async def test_health_readiness_metrics_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["store"] == "ok"
    assert b"entrepot_http_requests_total" in generate_latest()
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert "/v1/datasets/{ds}/records/{record_id}" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200
