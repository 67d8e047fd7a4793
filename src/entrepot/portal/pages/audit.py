"""The audit log: filtered, paged, and exported, through the audit service the API uses.

Who sees which rows is the service's decision (platform admins every row, an
organisation's admins their organisations' rows and the denials aimed at them; anyone
else is refused, and that refusal is audited). The filters are the API's, read from the
query string so a filtered view is a link one can share; the export streams the same
rows as NDJSON (``/v1/audit/export``'s runner).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.responses import Response

from entrepot.audit import export, service
from entrepot.audit.models import AuditFilter, Outcome
from entrepot.parts import components
from entrepot.portal import views
from entrepot.portal.web import Ctx, page
from entrepot.problems import BadRequest, Problem
from entrepot.settings import Settings
from entrepot.store.bulk_slots import BulkSlots
from entrepot.store.work import reads
from entrepot.streaming import GuardedStreamingResponse, bulk_floor

PAGE_SIZE = 50
OUTCOMES: tuple[Outcome, ...] = ("success", "denied", "failure")
LIMITS = {"actor": 500, "action": 200, "dataset": 64, "org": 64}
NAMES = ("actor", "action", "dataset", "outcome", "since", "until", "org")


def _moment(raw: str, name: str) -> datetime | None:
    """A ``datetime-local`` value (or any ISO 8601 time), read as UTC without an offset."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            f"{name} is not a time.",
            errors=[{"path": f"/{name}", "message": "must be a time: YYYY-MM-DDTHH:MM"}],
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _given(ctx: Ctx) -> dict[str, str]:
    query = ctx.request.query_params
    return {name: query.get(name, "").strip() for name in NAMES}


def _filters(given: dict[str, str]) -> AuditFilter:
    """The filters as the API would read them; a value it would refuse is a 400."""
    for name, limit in LIMITS.items():
        if len(given[name]) > limit:
            raise BadRequest(
                f"{name} is too long.",
                errors=[{"path": f"/{name}", "message": f"{limit} characters at most"}],
            )
    if given["dataset"] and not views.is_slug(given["dataset"]):
        raise BadRequest(
            "A dataset's name has lowercase letters, digits, - and _.",
            errors=[{"path": "/dataset", "message": "not a dataset name"}],
        )
    outcome = given["outcome"] or None
    if outcome is not None and outcome not in OUTCOMES:
        raise BadRequest(
            "outcome is success, denied or failure.",
            errors=[{"path": "/outcome", "message": "unknown outcome"}],
        )
    return AuditFilter(
        actor=given["actor"] or None,
        action=given["action"] or None,
        outcome=outcome,
        since=_moment(given["since"], "since"),
        until=_moment(given["until"], "until"),
        org=given["org"] or None,
        dataset=given["dataset"] or None,
    )


def _details(entry: Any) -> str:
    text = orjson.dumps(entry.details).decode()
    return text if len(text) <= 300 else text[:299] + "…"


@page()
async def audit_log(ctx: Ctx) -> Response:
    given = _given(ctx)
    cursor = ctx.request.query_params.get("cursor") or None
    entries: list[Any] = []
    next_cursor = None
    errors: dict[str, str] = {}
    message = ""
    status = 200
    try:
        filters = _filters(given)
        async with reads(ctx.pool) as reading:
            found = await service.list_entries(
                reading, ctx.principal, filters, cursor=cursor, limit=PAGE_SIZE
            )
        entries, next_cursor = found["data"], found["next_cursor"]
    except Problem as problem:
        if problem.status in (403, 404):
            raise
        status, message = problem.status, problem.detail
        errors = {
            str(e.get("path", "")).lstrip("/"): str(e.get("message", ""))
            for e in problem.errors or []
        }
    managed = [o for o in ctx.visitor.orgs if ctx.visitor.is_admin or o.role in ("owner", "admin")]
    query = urlencode({k: v for k, v in given.items() if v})
    return ctx.render(
        "audit.html",
        status=status,
        given=given,
        entries=entries,
        details=_details,
        next_cursor=next_cursor,
        query=query,
        outcomes=OUTCOMES,
        orgs=managed,
        errors=errors,
        message=message,
    )


@page()
async def audit_export(ctx: Ctx) -> Response:
    filters = _filters(_given(ctx))
    found = components(ctx.request)
    chunks = await export.export(ctx.units, found.get(BulkSlots), ctx.principal, filters)
    settings: Settings = found.get(Settings)
    return GuardedStreamingResponse(
        chunks,
        bulk_floor(settings),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit.ndjson"'},
    )
