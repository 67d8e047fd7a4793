"""Denials in the audit log: every 401, 403 and 404 that guards something is recorded.

Written on a pooled connection of its own (a denial has no transaction), with a
deadline: a failing store must never turn a denial into a 5xx.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog
from starlette.requests import Request

from entrepot.auditing.log import record
from entrepot.parts import components
from entrepot.problems import Problem, Unauthorized

log = structlog.get_logger("entrepot.problems")

AUDIT_TIMEOUT_SECONDS = 2.0


async def audit_denial(request: Request, problem: Problem) -> None:
    """Write the denial's audit row; a failing store must never turn a 401/403/404 into a 5xx."""
    principal = getattr(request.state, "principal", None)
    details: dict[str, Any] = {"method": request.method, "detail": problem.detail}
    actor, app_id, org_id = None, None, None
    if isinstance(problem, Unauthorized):
        # Names the refused credential (key id or display prefix), never its secret.
        details["reason"] = problem.reason
        actor, app_id, org_id = problem.credential, problem.app_id, problem.org_id
    try:
        await asyncio.wait_for(
            record(
                components(request).get(asyncpg.Pool),
                principal,
                "auth.failed" if problem.status == 401 else "access.denied",
                request.url.path,
                outcome="denied",
                status=problem.status,
                details=details,
                actor=actor,
                app_id=app_id,
                org_id=org_id,
                target_org_id=problem.target_org,
            ),
            AUDIT_TIMEOUT_SECONDS,
        )
    except Exception as exc:  # the store is down or slow: answer anyway, loudly
        log.warning("audit_denial_failed", error=type(exc).__name__, path=request.url.path)
