"""OpenTelemetry spans for SQL and outbound webhooks; HTTP server spans are FastAPI's own.

Off unless ``ENTREPOT_OPENTELEMETRY=true``. Then the app's lifespan calls
:func:`start`: asyncpg is instrumented (process-wide: every statement a span,
its parameters never recorded), the webhook worker's HTTP client is, and each
delivery attempt is a span of its own, so its request and the SQL that records
its outcome share one trace. Spans go to the process's tracer provider (FastAPI
sets one from ``OTEL_*`` variables with ``FASTAPI_OTEL_AUTO_CONFIGURE=true``).
The instrumentations come with the ``otel`` extra; without it, only FastAPI's
HTTP spans are made, and the start says so in a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import httpx
import structlog
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from entrepot import __version__

log = structlog.get_logger("entrepot.tracing")
EXTRA = "otel"

_tracer: trace.Tracer | None = None
_instrumentor: Any = None
_NO_SPAN: AbstractContextManager[object] = nullcontext()


def start() -> None:
    """Make SQL and webhook spans from now on (idempotent)."""
    global _tracer, _instrumentor
    if _tracer is not None:
        return
    _tracer = trace.get_tracer("entrepot", __version__)
    try:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    except ImportError:
        log.warning(
            "opentelemetry_partial",
            reason=f"SQL and webhook spans need the {EXTRA!r} extra (entrepot[{EXTRA}])",
        )
        return
    _instrumentor = AsyncPGInstrumentor(capture_parameters=False)  # type: ignore[no-untyped-call]
    _instrumentor.instrument()


def stop() -> None:
    """Undo :func:`start` (a process that builds several apps, as the tests do)."""
    global _tracer, _instrumentor
    if _instrumentor is not None:
        _instrumentor.uninstrument()
    _tracer = _instrumentor = None


def instrument_client(client: httpx.AsyncClient) -> None:
    """Spans for ``client``'s requests, with the W3C ``traceparent`` header sent along."""
    if _instrumentor is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, request_hook=_without_query)


async def _without_query(span: trace.Span, request: Any) -> None:
    """A receiver's URL may carry a token in its query: its spans keep the URL without it
    (under both the old and the stable semantic conventions' names)."""
    url = str(httpx.URL(request.url).copy_with(query=None))
    span.set_attribute("http.url", url)
    span.set_attribute("url.full", url)


def span(name: str, attributes: Mapping[str, AttributeValue]) -> AbstractContextManager[object]:
    """A span around a unit of background work; nothing at all with tracing off."""
    if _tracer is None:
        return _NO_SPAN
    return _tracer.start_as_current_span(name, attributes=attributes)
