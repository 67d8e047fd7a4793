"""Liveness (entrepot.liveness) and readiness. Metrics: ops/metrics_server.py."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from entrepot.components import Components
from entrepot.liveness import Liveness
from entrepot.ops.lifecycle import Lifecycle
from entrepot.parts import components
from entrepot.store_failures import STORE_FAILURES

router = APIRouter(tags=["operations"])

_LIVE: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "stalled": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The loops that stopped making progress.",
        },
    },
}
_READY: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "unavailable"]},
        "checks": {
            "type": "object",
            "description": "Each dependency's state: draining (yes/no), store, redis (when "
            "configured), webhooks.",
            "additionalProperties": {"type": "string"},
        },
    },
}


def _json(schema: dict[str, Any], description: str, example: object) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema, "example": example}},
    }


@router.get(
    "/healthz",
    summary="Liveness: the event loop and every background loop make progress",
    responses={
        200: _json(_LIVE, "Alive.", {"status": "ok"}),
        503: _json(_LIVE, "A loop stalled.", {"status": "unavailable", "stalled": ["webhooks"]}),
    },
)
async def healthz(request: Request) -> JSONResponse:
    liveness = components(request).find(Liveness)
    stalled: list[str] = [] if liveness is None else liveness.stalled()
    if stalled:
        return JSONResponse({"status": "unavailable", "stalled": stalled}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: the store answers and we are not draining",
    responses={
        200: _json(
            _READY,
            "Ready.",
            {"status": "ready", "checks": {"draining": "no", "store": "ok", "webhooks": "ok"}},
        ),
        503: _json(
            _READY,
            "Not ready: draining, or the store does not answer.",
            {"status": "unavailable", "checks": {"draining": "yes", "store": "ok"}},
        ),
    },
)
async def readyz(request: Request) -> JSONResponse:
    ready, checks = await readiness(components(request))
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


async def readiness(found: Components) -> tuple[bool, dict[str, str]]:
    """Whether this replica is ready, and each dependency's state: what /readyz answers
    and the admin console's health page shows (one computation for both)."""
    checks: dict[str, str] = {}
    ready = not found.get(Lifecycle).draining
    checks["draining"] = "yes" if not ready else "no"
    pool = found.get(asyncpg.Pool)
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout=2.0)
        checks["store"] = "ok"
    except STORE_FAILURES:  # a timeout is an OSError
        checks["store"] = "unavailable"
        ready = False
    redis = found.find(Redis)
    if redis is not None:
        try:
            await asyncio.wait_for(redis.ping(), timeout=1.0)
            checks["redis"] = "ok"
        except Exception:  # degraded, not down: limits fall back to local buckets
            checks["redis"] = "unavailable"
    lifecycle = found.get(Lifecycle)
    for name, state in lifecycle.degraded.items():
        checks[name] = state()
    return ready, checks
