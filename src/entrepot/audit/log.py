"""Writing audit rows.

Mutations write their row inside their own transaction (``conn``), so an
audited change and its audit row commit or vanish together. Denials have no
transaction of their own and are written on a pooled connection.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import orjson

from entrepot.auth.principal import Principal
from entrepot.context import current_request
from entrepot.store.types import Executor

Outcome = Literal["success", "denied", "failure"]

INSERT = """
INSERT INTO audit_log (actor, app_id, org_id, action, target, outcome, status, request_id, ip,
                       details, target_org_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11)
"""


async def record(
    conn: Executor,
    principal: Principal | None,
    action: str,
    target: str | None,
    *,
    outcome: Outcome = "success",
    status: int | None = None,
    org_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    actor: str | None = None,
    app_id: uuid.UUID | None = None,
    target_org_id: uuid.UUID | None = None,
) -> None:
    """One audit row. ``org_id`` is the actor's side (default: the principal's org);
    ``target_org_id`` the organisation owning what was targeted, when that is another."""
    ctx = current_request.get()
    await conn.execute(
        INSERT,
        actor or (principal.subject if principal else "anonymous"),
        app_id or (principal.app_id if principal else None),
        org_id or (principal.org_id if principal else None),
        action,
        target,
        outcome,
        status,
        ctx.request_id if ctx else None,
        ctx.ip if ctx else None,
        orjson.dumps(details or {}, default=str).decode(),
        target_org_id,
    )
