"""ENTREPOT_OPENTELEMETRY=true: a request is one trace, FastAPI's server span with a span
per SQL statement under it, and its log lines name that trace; a webhook delivery is a
trace of its own, its outbound POST and its SQL inside. Spans are caught by the SDK's
in-memory exporter (a real exporter: it keeps what the SDK sends it)."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip(
    "opentelemetry.instrumentation.asyncpg",
    reason="needs the otel extra: pip install -e '.[otel]' (the dev extra includes it)",
)

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind

from entrepot.logging import configure as configure_logging
from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN, app_and_client, prepared_database
from tests.e2e.test_webhook_delivery import Receiver
from tests.factories import make_app, make_dataset, make_org
from tests.integration.test_webhooks import HOOK_SCOPES, arrived, eventually, subscribe
from tests.waiting import until

Logged = Callable[[], list[str]]


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (the SDK's: set once per process), exporting here."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture(scope="module")
async def traced(
    fresh_database: object, spans: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    """A traced app on a database of its own: the session app's webhook worker (its client
    made before tracing started, loopback receivers refused) must not claim its deliveries."""
    settings = Settings(
        database_url=await prepared_database(fresh_database),
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        opentelemetry=True,
        webhook_allowed_networks="127.0.0.0/8",
    )
    async with app_and_client(settings) as (_, client):
        yield client


@pytest.fixture
def logged(request: pytest.FixtureRequest) -> Iterator[Logged]:
    """Logs at info in the format the test names (``json`` or ``console``), written to a
    stderr of the test's own: the lines so far."""
    real, stderr = sys.stderr, io.TextIOWrapper(io.BytesIO(), write_through=True)
    sys.stderr = stderr
    try:
        configure_logging("info", request.param)
        yield lambda: stderr.buffer.getvalue().decode().splitlines()  # type: ignore[attr-defined]
    finally:
        sys.stderr = real
        configure_logging("warning", "console")


def of_trace(spans: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]


def server_span(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    [span] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER and s.name == name]
    return span


def is_sql(span: ReadableSpan) -> bool:
    return span.kind == SpanKind.CLIENT and (span.attributes or {}).get("db.system") == "postgresql"


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> Iterator[ReadableSpan]:
    by_id = {s.context.span_id: s for s in spans}
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        yield span


@pytest.mark.parametrize("logged", ["json"], indirect=True)
async def test_a_request_is_one_trace_and_its_access_line_names_it(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter, logged: Logged
) -> None:
    spans.clear()
    org = (await make_org(traced))["name"]
    ds = (await make_dataset(traced, org))["name"]
    assert (await traced.get(f"/v1/datasets/{ds}/records")).status_code == 200

    server = server_span(spans, "GET /v1/datasets/{ds}/records")
    assert (server.attributes or {})["http.response.status_code"] == 200
    inside = of_trace(spans, server.context.trace_id)
    sql = [s for s in inside if is_sql(s)]
    assert sql, "the records were read with SQL spans in the request's trace"
    for statement in sql:
        assert server in ancestors(statement, inside)
        assert "db.statement.parameters" not in (statement.attributes or {})

    async def access_lines() -> list[dict[str, Any]]:
        """The list's access line: written at the end of the event loop's turn."""
        lines = [json.loads(line) for line in logged() if line.startswith("{")]
        return [
            line
            for line in lines
            if line["event"] == "request" and line["route"] == "/v1/datasets/{ds}/records"
        ]

    [access] = await until(access_lines, "the access line of the list")
    assert access["trace_id"] == format(server.context.trace_id, "032x")
    assert access["span_id"] == format(server.context.span_id, "016x")


@pytest.mark.parametrize("logged", ["console"], indirect=True)
async def test_console_lines_carry_the_trace_id_too(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter, logged: Logged
) -> None:
    spans.clear()
    assert (await traced.get("/v1/me")).status_code == 200
    server = server_span(spans, "GET /v1/me")
    [line] = [line for line in logged() if "/v1/me" in line]
    assert re.search(rf"\btrace_id={server.context.trace_id:032x}\b", line), line


async def test_a_webhook_delivery_traces_its_post_and_its_sql(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    receiver = Receiver()
    try:
        org = (await make_org(traced))["name"]
        ds = (await make_dataset(traced, org, primary_key="sku"))["name"]
        app: dict[str, Any] = await make_app(traced, org, scopes=HOOK_SCOPES)
        assert (await subscribe(traced, app["id"], receiver.url, [ds])).status_code == 201
        spans.clear()
        record = {"sku": "a", "name": "A", "price": 1}
        assert (await traced.put(f"/v1/datasets/{ds}/records/a", json=record)).status_code == 201
        [delivered] = await arrived(receiver, 1)

        def delivery() -> list[ReadableSpan]:
            return [s for s in spans.get_finished_spans() if s.name == "webhook delivery"]

        async def finished() -> bool:
            return bool(delivery())

        await eventually(finished)
        [span] = delivery()
        inside = of_trace(spans, span.context.trace_id)
        [post] = [s for s in inside if s.kind == SpanKind.CLIENT and s.name == "POST"]
        assert span in ancestors(post, inside)
        attributes = post.attributes or {}
        assert (
            attributes.get("http.response.status_code", attributes.get("http.status_code")) == 200
        )
        assert "source=entrepot" not in str(attributes), "the receiver URL's query is left out"
        assert any(is_sql(s) and span in ancestors(s, inside) for s in inside), "its outcome saved"
        traceparent = delivered.headers["traceparent"]
        assert traceparent.split("-")[1] == format(span.context.trace_id, "032x")
    finally:
        receiver.close()


async def test_a_stream_ticket_is_in_no_span(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    """FastAPI's server span keeps the query string (``url.query``): the ticket is taken
    out of it before the span is made, and the other parameters stay."""
    spans.clear()
    ds = (await make_dataset(traced, primary_key="sku"))["name"]
    issued = await traced.post(f"/v1/datasets/{ds}/changes/tickets")
    assert issued.status_code == 200, issued.text
    ticket = issued.json()["ticket"]
    async with httpx.AsyncClient(transport=traced._transport, base_url=traced.base_url) as page:
        refused = await page.get(  # the JSON feed: refused, and a span all the same
            f"/v1/datasets/{ds}/changes", params={"after": "0", "ticket": ticket}
        )
    assert refused.status_code == 403, refused.text
    server = server_span(spans, "GET /v1/datasets/{ds}/changes")
    assert (server.attributes or {}).get("url.query") == "after=0"
    for span in spans.get_finished_spans():
        for value in (span.attributes or {}).values():
            assert ticket not in str(value), span.name
