"""OpenTelemetry spans for SQL and outbound webhooks; HTTP server spans are FastAPI's own.

Off unless ``ENTREPOT_OPENTELEMETRY=true``. Then the app's lifespan calls
:func:`start`: asyncpg is instrumented (process-wide: every statement a span,
its parameters never recorded), each webhook request is a CLIENT span
(:func:`client_request`, the worker's own HTTP client), and each delivery
attempt is a span of its own, so its request and the SQL that records its
outcome share one trace. Spans go to the process's tracer provider (FastAPI
sets one from ``OTEL_*`` variables with ``FASTAPI_OTEL_AUTO_CONFIGURE=true``).
The instrumentations come with the ``otel`` extra; without it, only FastAPI's
HTTP spans are made, and the start says so in a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from opentelemetry import propagate, trace
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


@contextmanager
def client_request(
    method: str, url: str, headers: dict[str, str]
) -> Iterator[Callable[[int], None]]:
    """A CLIENT span around one outbound request, with the W3C ``traceparent`` header
    added to ``headers``; yields what notes the answer's status. Nothing with tracing
    off. The URL is recorded without its query (receivers sometimes put tokens there)."""
    if _tracer is None:
        yield _no_status
        return
    shown = urlunsplit(urlsplit(url)._replace(query="", fragment=""))
    attributes: dict[str, AttributeValue] = {
        "http.request.method": method,
        "http.method": method,
        "url.full": shown,
        "http.url": shown,
    }
    with _tracer.start_as_current_span(
        method, kind=trace.SpanKind.CLIENT, attributes=attributes
    ) as current:
        propagate.inject(headers)

        def status(code: int) -> None:
            current.set_attribute("http.response.status_code", code)
            current.set_attribute("http.status_code", code)
            if code >= 400:
                current.set_status(trace.StatusCode.ERROR)

        yield status


def _no_status(code: int) -> None:
    return None


def span(name: str, attributes: Mapping[str, AttributeValue]) -> AbstractContextManager[object]:
    """A span around a unit of background work; nothing at all with tracing off."""
    if _tracer is None:
        return _NO_SPAN
    return _tracer.start_as_current_span(name, attributes=attributes)
