"""Cross-origin requests from browsers (``ENTREPOT_CORS_ORIGINS``), off by default.

Credentials are bearer tokens in ``Authorization``, never cookies, so no origin is
allowed credentials: a page on an allowed origin can call the API only with a token
it holds, and the browser exposes the headers a client needs to follow the API's
own rules (ETags, rate limits, where a created record lives, the request id to quote
in a report, the export's feed position).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "Last-Event-ID",
    "X-Request-ID",
)
EXPOSED_HEADERS = (
    "ETag",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-Request-ID",
    "X-Entrepot-Seq",
    "X-Entrepot-Incarnation",
    "Idempotent-Replayed",
)
PREFLIGHT_CACHE_SECONDS = 600


def add_cors(app: FastAPI, origins: list[str]) -> None:
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=list(METHODS),
        allow_headers=list(REQUEST_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=PREFLIGHT_CACHE_SECONDS,
    )
