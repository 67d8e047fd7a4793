"""Writing audit rows.

Mutations write their row inside their own transaction (``conn``), so an
audited change and its audit row commit or vanish together. Denials have no
transaction of their own and are written on a pooled connection.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import orjson

from entrepot.context import current_request
from entrepot.principal import Principal
from entrepot.store.types import Executor

Outcome = Literal["success", "denied", "failure"]

COLUMNS = (
    "actor, app_id, org_id, action, target, outcome, status, request_id, ip, details, target_org_id"
)
INSERT = f"""
INSERT INTO audit_log ({COLUMNS})
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
        actor or (principal.actor if principal else "anonymous"),
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


def insert_from(
    source: str,
    first: int,
    principal: Principal,
    *,
    action_sql: str,
    status_sql: str,
    target: str,
    org_id: uuid.UUID | None,
) -> tuple[str, list[Any]]:
    """The INSERT of a successful mutation's row, one per row of the CTE ``source``, for a
    statement that writes and audits at once (a record write: one round trip).

    ``action_sql`` and ``status_sql`` are SQL over ``source``'s columns built from
    constants, never from input; the other values are parameters numbered from ``first``.
    Returns the statement and its parameters.
    """
    ctx = current_request.get()
    p = [f"${first + i}" for i in range(6)]
    sql = (
        f"INSERT INTO audit_log ({COLUMNS}) "
        f"SELECT {p[0]}::text, {p[1]}::uuid, {p[2]}::uuid, {action_sql}, {p[3]}::text, "
        f"'success', {status_sql}, {p[4]}::text, {p[5]}::text, '{{}}'::jsonb, NULL FROM {source}"
    )
    args = [
        principal.subject,
        principal.app_id,
        org_id or principal.org_id,
        target,
        ctx.request_id if ctx else None,
        ctx.ip if ctx else None,
    ]
    return sql, args
