"""SQL for reading the audit log, and for its monthly partitions. Rows are written by
:mod:`entrepot.auditing.log`, inside the transaction of whatever they record; nothing
here writes a row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from entrepot.audit.models import AuditFilter
from entrepot.store.types import Conn, Executor

COLUMNS = (
    "id, at, actor, app_id, org_id, action, target, outcome, status, request_id, ip, "
    "details::text AS details, target_org_id"
)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit entry (``COLUMNS``, in their order); ``details`` is JSON text."""

    id: int
    at: datetime
    actor: str
    app_id: uuid.UUID | None
    org_id: uuid.UUID | None
    action: str
    target: str | None
    outcome: str
    status: int | None
    request_id: str | None
    ip: str | None
    details: str
    target_org_id: uuid.UUID | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> AuditRow:
        return cls(*row)


def _where(
    filters: AuditFilter, orgs: list[uuid.UUID] | None, before: int | None
) -> tuple[str, list[Any]]:
    """The WHERE clause for ``filters``, restricted to ``orgs`` (None: every row)."""
    clauses: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    for column in ("actor", "action", "target"):
        value: str | None = getattr(filters, column)
        if value is None:
            continue
        if value.endswith("*"):
            clauses.append(f"starts_with({column}, {arg(value[:-1])})")
        else:
            clauses.append(f"{column} = {arg(value)}")
    if filters.dataset is not None:
        named = arg(f"dataset:{filters.dataset}")
        clauses.append(
            f"(target = {named} OR starts_with(target, {named} || '/') "
            f"OR details->>'dataset' = {arg(filters.dataset)})"
        )
    if filters.outcome is not None:
        clauses.append(f"outcome = {arg(filters.outcome)}")
    if filters.request_id is not None:
        clauses.append(f"request_id = {arg(filters.request_id)}")
    if filters.since is not None:
        clauses.append(f"at >= {arg(filters.since)}")
    if filters.until is not None:
        clauses.append(f"at < {arg(filters.until)}")
    if orgs is not None:  # the rows of these organisations, and denials aimed at them
        param = arg(orgs)
        clauses.append(f"(org_id = ANY({param}::uuid[]) OR target_org_id = ANY({param}::uuid[]))")
    if before is not None:
        clauses.append(f"id < {arg(before)}")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


async def page(
    conn: Executor,
    filters: AuditFilter,
    *,
    orgs: list[uuid.UUID] | None,
    before: int | None,
    limit: int,
) -> list[AuditRow]:
    where, args = _where(filters, orgs, before)
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM audit_log{where} ORDER BY id DESC LIMIT ${len(args)}", *args
    )
    return [AuditRow.of(row) for row in rows]


async def export_batches(
    conn: Conn, filters: AuditFilter, *, orgs: list[uuid.UUID] | None, size: int
) -> AsyncIterator[list[AuditRow]]:
    """Every matching row, newest first, ``size`` at a time; iterate inside a transaction."""
    where, args = _where(filters, orgs, None)
    cursor = await conn.cursor(f"SELECT {COLUMNS} FROM audit_log{where} ORDER BY id DESC", *args)
    while rows := await cursor.fetch(size):
        yield [AuditRow.of(row) for row in rows]


# --- partitions (one per month, plus a default one: migration 0007) ------------------


async def prepare_partitions(conn: Executor, ahead_days: int) -> list[str]:
    """Make the month partitions from this month to the one ``ahead_days`` from now, and
    give rows that reached the default partition months of their own; the names made."""
    rows = await conn.fetch(
        "SELECT audit_log_prepare(make_interval(days => $1)) AS name", int(ahead_days)
    )
    return [row["name"] for row in rows]


async def drop_partitions_before(conn: Executor, cutoff: datetime) -> list[str]:
    """Detach and drop every month partition whose month ended before ``cutoff``; their
    names."""
    rows = await conn.fetch("SELECT audit_log_drop_before($1) AS name", cutoff)
    return [row["name"] for row in rows]
