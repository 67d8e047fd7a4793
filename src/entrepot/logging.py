"""Structured JSON logs (structlog). Nothing here ever receives a secret:
request logs carry method, path, status, duration and ids only."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from entrepot.context import answer_cut


class _CutAnswers(logging.Filter):
    """Drops uvicorn's error for an answer we cut short on purpose (already logged as
    ``client_too_slow``); the same message for any other answer still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (answer_cut.get() and "without completing response" in record.getMessage())


_CUT_ANSWERS = _CutAnswers()


def configure(level: str = "info", fmt: str = "json") -> None:
    logging.getLogger("uvicorn.error").addFilter(_CUT_ANSWERS)  # idempotent
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
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
