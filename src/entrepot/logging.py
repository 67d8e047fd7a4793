"""Structured JSON logs (structlog). Nothing here ever receives a secret:
request logs carry method, path, status, duration and ids only."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any, BinaryIO, TextIO

import orjson
import structlog

from entrepot.context import answer_cut, current_request


class _CutAnswers(logging.Filter):
    """Drops uvicorn's error for an answer we cut short on purpose (already logged as
    ``client_too_slow``); the same message for any other answer still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (answer_cut.get() and "without completing response" in record.getMessage())


_CUT_ANSWERS = _CutAnswers()


def add_request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Every line logged while serving a request carries its id (from the request's context,
    set by EdgeMiddleware; cheaper per request than binding structlog's contextvars)."""
    context = current_request.get()
    if context is not None and "request_id" not in event:
        event["request_id"] = context.request_id
    if _current_span is not None:
        _add_trace(event)
    return event


_current_span: Callable[[], Any] | None = None


def trace_ids(enabled: bool) -> None:
    """Lines logged inside a span carry its ``trace_id`` and ``span_id`` (OpenTelemetry's
    hex forms), to go from a log line to its trace; off, nothing is looked up."""
    global _current_span
    if enabled:
        from opentelemetry.trace import get_current_span

        _current_span = get_current_span
    else:
        _current_span = None


def _add_trace(event: MutableMapping[str, Any]) -> None:
    assert _current_span is not None
    context = _current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")


class _Clock:
    """The access line's timestamp: ISO 8601 in UTC with microseconds, as structlog's
    ``TimeStamper(fmt="iso", utc=True)`` writes it, at a fifth of ``datetime``'s cost
    (the date and time of day are formatted once a second). Always six digits of
    microseconds, where ``isoformat`` drops them at an exact second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"


class AccessLog:
    """The per-request lines (``request``, ``client_aborted``...) of EdgeMiddleware.

    With JSON logs at info, a line is rendered straight to bytes: the same keys,
    values and order as structlog would write (event, level and timestamp last),
    at about a tenth of the cost of the processor chain, for the one line every
    request writes. Otherwise (console format, a higher level, tests capturing
    logs) it is structlog's.

    The lines of one turn of the event loop leave in one write, at the end of that
    turn (a write system call per request was about 4% of a GET by id under load,
    bench/RESULTS.md): a line is out within microseconds of its answer, never held
    while the process is idle, in the order the requests ended. Outside a running
    loop, and at exit, lines are written at once.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._structlog = structlog.get_logger(name)
        self._stream: BinaryIO | None = None
        self._clock = _Clock()
        self._pending: list[bytes] = []
        self._scheduled = False

    def direct(self, stream: BinaryIO | None) -> None:
        """Write JSON lines straight to ``stream`` (None: through structlog, whose logger
        is taken anew: a cached one would keep the configuration it was first used in)."""
        self.flush()
        self._stream = stream
        self._structlog = structlog.get_logger(self._name)

    def info(self, event: str, **fields: Any) -> None:
        if self._stream is None:
            self._structlog.info(event, **fields)
            return
        fields["event"] = event
        if _current_span is not None:
            _add_trace(fields)
        fields["level"] = "info"
        fields["timestamp"] = self._clock.now()
        self._pending.append(orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE))
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def forget(self) -> None:
        """Drop the lines not yet written (a forked child's copy of its parent's)."""
        self._pending = []
        self._scheduled = False

    def flush(self) -> None:
        """Write the lines not yet written, in one write."""
        self._scheduled = False
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        if self._stream is not None:
            self._stream.write(b"".join(lines))
            self._stream.flush()


access_log = AccessLog("entrepot.access")
atexit.register(access_log.flush)
os.register_at_fork(after_in_child=access_log.forget)  # a child writes only its own lines


def resolved_format(fmt: str, stream: TextIO | None = None) -> str:
    """``auto`` is ``console`` on a terminal (a person running ``make run``), else ``json``
    (a service, a container, a pipe into a log shipper)."""
    if fmt != "auto":
        return fmt
    stream = sys.stderr if stream is None else stream
    return "console" if stream.isatty() else "json"


def configure(level: str = "info", fmt: str = "json") -> None:
    logging.getLogger("uvicorn.error").addFilter(_CUT_ANSWERS)  # idempotent
    fmt = resolved_format(fmt)
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: structlog.typing.Processor
    factory: Callable[..., Any]
    if fmt == "json":
        # orjson renders the per-request access line several times faster than json.dumps.
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = structlog.BytesLoggerFactory(sys.stderr.buffer)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    access_log.direct(sys.stderr.buffer if fmt == "json" and numeric <= logging.INFO else None)
