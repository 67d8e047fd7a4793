"""A 500 looks like every other response: problem document, request id, metrics, one log line.

The failure is injected by replacing a service method (the direct route and the
routed path call the same one) or by a route added to a test app.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from entrepot.app import create_app
from entrepot.problems import PROBLEM_CONTENT_TYPE
from entrepot.records.service import RecordService
from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.factories import make_dataset
from tests.integration.edge_helpers import (
    captured_logs,
    events,
    http_scope,
    requests_total,
    routed_only,
)

RECORD_ROUTE = "/v1/datasets/{ds}/records/{record_id}"
LIST_ROUTE = "/v1/datasets/{ds}/records"
BROKEN_STREAM = "/test/broken-stream"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REQUEST_IDS = (f"server-error-{n}" for n in itertools.count())


class Boom(RuntimeError):
    pass


async def boom(*args: object, **kwargs: object) -> None:
    raise Boom("injected")


async def broken_stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk\n"
        raise Boom("the stream broke")

    return StreamingResponse(chunks(), media_type="text/plain")


@pytest.fixture(scope="module")
async def apps(settings: Settings) -> AsyncIterator[dict[str, FastAPI]]:
    """The same platform as served ("direct") and through FastAPI's router only ("routed")."""
    async with AsyncExitStack() as stack:
        made: dict[str, FastAPI] = {}
        for name in ("direct", "routed"):
            app = create_app(settings.model_copy(update={"pool_min_size": 1}))
            if name == "routed":
                routed_only(app)
            app.add_api_route(BROKEN_STREAM, broken_stream, methods=["GET"])
            await stack.enter_async_context(app.router.lifespan_context(app))
            made[name] = app
        yield made


@pytest.fixture(scope="module")
async def ds(client: httpx.AsyncClient) -> str:
    name: str = (await make_dataset(client))["name"]
    return name


@pytest.fixture
def failing_records(apps: dict[str, FastAPI], monkeypatch: pytest.MonkeyPatch) -> None:
    for app in apps.values():
        monkeypatch.setattr(app.state.components.get(RecordService), "get", boom)
        monkeypatch.setattr(app.state.components.get(RecordService), "list", boom)


async def answer(app: FastAPI, path: str, request_id: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.get(path, headers={**ADMIN, "X-Request-ID": request_id})


def expected_body(request_id: str) -> dict[str, object]:
    return {
        "type": "https://entrepot.dev/problems/internal",
        "title": "Internal server error",
        "status": 500,
        "detail": "An unexpected error occurred; it has been logged.",
        "request_id": request_id,
    }


async def assert_observed_500(
    app: FastAPI, path: str, route: str, monkeypatch: pytest.MonkeyPatch
) -> httpx.Response:
    request_id = next(REQUEST_IDS)
    before = requests_total("GET", route, 500)
    with captured_logs(monkeypatch) as logs:
        response = await answer(app, path, request_id)
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["X-Request-ID"] == request_id
    assert response.json() == expected_body(request_id)
    assert requests_total("GET", route, 500) == before + 1
    [access] = events(logs, "request")
    assert (access["status"], access["route"], access["request_id"]) == (500, route, request_id)
    [error] = events(logs, "unhandled_error")
    assert error["log_level"] == "error"
    assert isinstance(error["exc_info"], Boom)
    assert error["request_id"] == request_id
    return response


@pytest.mark.usefixtures("failing_records")
async def test_get_one_record_500_is_a_problem_with_the_request_id_either_way(
    apps: dict[str, FastAPI], ds: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"/v1/datasets/{ds}/records/a"
    direct = await assert_observed_500(apps["direct"], path, RECORD_ROUTE, monkeypatch)
    routed = await assert_observed_500(apps["routed"], path, RECORD_ROUTE, monkeypatch)

    def comparable(r: httpx.Response) -> tuple[int, list[tuple[str, str]], object]:
        headers = sorted((k, v) for k, v in r.headers.items() if k not in ("date", "x-request-id"))
        body = {k: v for k, v in r.json().items() if k != "request_id"}
        return r.status_code, headers, body

    assert comparable(direct) == comparable(routed)


@pytest.mark.usefixtures("failing_records")
async def test_a_list_500_is_a_problem_with_the_request_id_either_way(
    apps: dict[str, FastAPI], ds: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for app in apps.values():
        await assert_observed_500(app, f"/v1/datasets/{ds}/records", LIST_ROUTE, monkeypatch)


async def test_a_failure_after_the_response_started_cuts_the_connection(
    apps: dict[str, FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = next(REQUEST_IDS)
    scope = http_scope("GET", BROKEN_STREAM, [("x-request-id", request_id)])
    before = requests_total("GET", BROKEN_STREAM, 500)
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    with captured_logs(monkeypatch) as logs, pytest.raises(Boom):
        await apps["direct"](scope, receive, send)  # type: ignore[arg-type]
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1  # never a second start
    assert starts[0]["status"] == 200
    assert not any(m.get("more_body") is False for m in sent)  # the body never "completes"
    assert requests_total("GET", BROKEN_STREAM, 500) == before + 1
    [access] = events(logs, "request")
    assert (access["status"], access["request_id"]) == (500, request_id)
    [error] = events(logs, "unhandled_error")
    assert isinstance(error["exc_info"], Boom)
