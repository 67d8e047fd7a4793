"""Reading the audit log: who may see which rows, pages, and streamed exports.

Platform administrators see every row. An organisation's administrators see
the rows of their organisations only (``org_id``), whatever the filters say,
and the denials of other organisations' apps aimed at their datasets
(``target_org_id``): of those actors they learn the app and its organisation,
nothing more. Anyone else is refused, and that refusal is itself audited.
Rows are never changed: the table's triggers refuse UPDATE, DELETE and TRUNCATE.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson

from entrepot.audit import repository as repo
from entrepot.audit.models import AuditEntry, AuditFilter
from entrepot.audit.repository import AuditRow
from entrepot.orgs import repository as orgs_repo
from entrepot.pagination import decode_cursor, fingerprint, invalid_cursor, page
from entrepot.principal import Principal, can_manage_org
from entrepot.problems import BadRequest, Forbidden, NotFound
from entrepot.store.work import Reads


def entry_out(row: AuditRow, orgs: list[uuid.UUID] | None = None) -> AuditEntry:
    """The row as a reader limited to ``orgs`` (None: every org) may see it."""
    if orgs is not None and row.org_id not in orgs:
        return _as_target(row)
    return _entry(row)


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        app_id=str(row.app_id) if row.app_id else None,
        org_id=str(row.org_id) if row.org_id else None,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        status=row.status,
        request_id=row.request_id,
        ip=row.ip,
        details=orjson.loads(row.details),
    )


def _as_target(row: AuditRow) -> AuditEntry:
    """A denial aimed at the reader's dataset by another organisation's actor: who
    (the app and its org) and what was attempted, not the actor's address, request or keys."""
    entry = _entry(row)
    return entry.model_copy(
        update={
            "actor": f"app:{entry.app_id}" if entry.app_id else entry.actor.split(":")[0],
            "request_id": None,
            "ip": None,
            "details": {k: entry.details[k] for k in ("method", "detail") if k in entry.details},
        }
    )


def _utc(moment: datetime | None, name: str) -> datetime | None:
    """Times without an offset are UTC; times PostgreSQL cannot hold are the caller's error."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise BadRequest(
            f"{name} is out of range.",
            errors=[{"path": f"query:{name}", "message": "out of range"}],
        ) from None


async def visible_orgs(
    reads: Reads, principal: Principal, org: str | None
) -> list[uuid.UUID] | None:
    """The organisations whose rows the caller may read (None: all of them)."""
    managed = (
        None
        if principal.is_admin
        else [o for o in principal.org_ids() if can_manage_org(principal, o)]
    )
    if managed == []:
        raise Forbidden(
            "Reading the audit log needs a platform administrator or an administrator "
            "of an organisation.",
            denial=True,
        )
    if org is None:
        return managed
    row = await orgs_repo.get_org(reads.conn, org)
    if row is None or (managed is not None and row.id not in managed):
        raise NotFound(
            f"Organisation {org!r} does not exist or is not visible to you.", denial=True
        )
    return [row.id]


def normalised(filters: AuditFilter) -> AuditFilter:
    return replace(filters, since=_utc(filters.since, "since"), until=_utc(filters.until, "until"))


async def list_entries(
    reads: Reads,
    principal: Principal,
    filters: AuditFilter,
    *,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    filters = normalised(filters)
    orgs = await visible_orgs(reads, principal, filters.org)
    fp = fingerprint("audit", filters)
    before = decode_cursor(cursor, fp)[0] if cursor else None
    if before is not None and (not isinstance(before, int) or isinstance(before, bool)):
        raise invalid_cursor()
    async with reads.planned_for_values():  # time ranges and filters: plans for the values
        rows = await repo.page(reads.conn, filters, orgs=orgs, before=before, limit=limit + 1)
    return page([entry_out(r, orgs) for r in rows], limit, fp, lambda entry: [entry.id])
