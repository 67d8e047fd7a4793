"""A client that goes away mid-body is a client abort (499, info), never an error."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import ADMIN_TOKEN
from tests.factories import make_dataset, unique
from tests.integration.edge_helpers import (
    call_asgi,
    captured_logs,
    events,
    http_scope,
    requests_total,
)

CREATE_ROUTE = "/v1/datasets/{ds}/records"
IMPORT_ROUTE = "/v1/datasets/{ds}/import"
CREATE_DATASET_ROUTE = "/v1/datasets"


def headers(content_type: str, length: int, request_id: str) -> list[tuple[str, str]]:
    return [
        ("authorization", f"Bearer {ADMIN_TOKEN}"),
        ("content-type", content_type),
        ("content-length", str(length)),
        ("x-request-id", request_id),
    ]


async def abort_mid_body(
    app: FastAPI,
    path: str,
    route: str,
    content_type: str,
    part: bytes,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Send ``part`` of a longer declared body, then disconnect; check what was recorded."""
    request_id = unique("abort")
    scope = http_scope("POST", path, headers(content_type, len(part) + 1000, request_id))
    before = requests_total("POST", route, 499)
    with caplog.at_level(logging.INFO), captured_logs(monkeypatch) as logs:
        sent = await call_asgi(
            app, scope, [{"type": "http.request", "body": part, "more_body": True}]
        )
    assert sent == []  # nobody is listening
    assert not [e for e in logs if e["log_level"] in ("error", "critical", "exception")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    [aborted] = events(logs, "client_aborted")
    assert aborted["log_level"] == "info"
    assert (aborted["method"], aborted["route"], aborted["request_id"]) == (
        "POST",
        route,
        request_id,
    )
    assert "exc_info" not in aborted
    [access] = events(logs, "request")
    assert (access["status"], access["route"]) == (499, route)
    assert requests_total("POST", route, 499) == before + 1


async def test_a_record_write_abandoned_mid_body_is_a_499_and_writes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    path = f"/v1/datasets/{ds}/records"
    part = b'{"sku": "half", "name": "Half", "price": 1'
    await abort_mid_body(app, path, CREATE_ROUTE, "application/json", part, monkeypatch, caplog)
    assert (await client.get(f"{path}/half")).status_code == 404
    assert (await client.get(path)).json()["data"] == []
    assert (await client.get("/healthz")).status_code == 200  # nothing is held


async def test_an_import_abandoned_mid_body_is_a_499_and_writes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    part = b'{"sku": "a", "name": "A", "price": 1}\n{"sku": "b", "name": "B", "price": 2}\n{"sk'
    await abort_mid_body(
        app,
        f"/v1/datasets/{ds}/import",
        IMPORT_ROUTE,
        "application/x-ndjson",
        part,
        monkeypatch,
        caplog,
    )
    assert (await client.get(f"/v1/datasets/{ds}/records")).json()["data"] == []


async def test_a_model_bodied_route_abandoned_mid_body_is_a_499_too(
    app: FastAPI,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """FastAPI turns a failed body read into a 400 itself; that 400 has no reader either."""
    name = unique("ds")
    part = b'{"name": "' + name.encode() + b'", "org": "x", "title": "T'
    await abort_mid_body(
        app, "/v1/datasets", CREATE_DATASET_ROUTE, "application/json", part, monkeypatch, caplog
    )
    assert (await client.get(f"/v1/datasets/{name}")).status_code == 404
