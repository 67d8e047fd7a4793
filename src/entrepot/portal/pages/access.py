"""Access: the requests an organisation's apps made (and what became of them), and,
for a provider's administrators, the approvals inbox and the grants with revoke.

Both sides list what the access service shows this person, narrowed to the
organisation they work in; deciding is the service's ``approve``/``reject``/``revoke``,
which check who may do it exactly as for the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from entrepot import jsonbody
from entrepot.access.models import AccessRequestApprove, AccessRequestReject
from entrepot.access.service import AccessService
from entrepot.apps.service import AppService
from entrepot.catalog import service as catalog
from entrepot.portal import views
from entrepot.portal.web import (
    Ctx,
    field_errors,
    note_denial,
    page,
    redirect,
    validating,
)
from entrepot.problems import Problem, Unprocessable
from entrepot.store.work import reads, unit_of_work

LISTED = 100


@page()
async def requests(ctx: Ctx) -> Response:
    org = ctx.visitor.org
    access: AccessService = ctx.part(AccessService)
    apps: AppService = ctx.part(AppService)
    mine: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    if org is not None and ctx.visitor.manages(org):
        async with reads(ctx.pool) as reading:
            listed = await apps.list_apps(
                reading, ctx.principal, org=org.name, cursor=None, limit=LISTED
            )
            names = {a["id"]: a["name"] for a in listed["data"]}
            found = await access.list_requests(
                reading,
                ctx.principal,
                status=None,
                dataset=None,
                app=None,
                cursor=None,
                limit=LISTED,
            )
        mine = [r for r in found["data"] if r["app"] in names]
    return ctx.render("requests.html", requests=mine, app_names=names)


async def _provider_view(ctx: Ctx) -> dict[str, Any]:
    """Pending requests for the current organisation's datasets, its grants, and each
    dataset's fields (for the narrowing form)."""
    org = ctx.visitor.org
    if org is None or not ctx.visitor.manages(org):
        return {"pending": [], "grants": [], "fields": {}, "keys": {}}
    access: AccessService = ctx.part(AccessService)
    async with reads(ctx.pool) as reading:
        owned = await catalog.list_datasets(
            reading, ctx.principal, q=None, org=org.name, tag=None, cursor=None, limit=LISTED
        )
        fields = {
            d["name"]: [f.name for f in views.field_rows(d["schema"], d["primary_key"])]
            for d in owned["data"]
        }
        keys = {d["name"]: d["primary_key"] for d in owned["data"]}
        pending = await access.list_requests(
            reading,
            ctx.principal,
            status="pending",
            dataset=None,
            app=None,
            cursor=None,
            limit=LISTED,
        )
        grants = await access.list_grants(
            reading, ctx.principal, dataset=None, app=None, cursor=None, limit=LISTED
        )
    return {
        "pending": [r for r in pending["data"] if r["dataset"] in fields],
        "grants": [g for g in grants["data"] if g["dataset"] in fields and g["status"] == "active"],
        "fields": fields,
        "keys": keys,
    }


@page()
async def approvals(ctx: Ctx) -> Response:
    view = await _provider_view(ctx)
    return ctx.render("approvals.html", **view, errors={}, message="", failed=None)


def _approval(ctx: Ctx) -> AccessRequestApprove:
    raw_filter = ctx.form.get("row_filter").strip()
    row_filter = None
    if raw_filter:
        try:
            row_filter = jsonbody.parse_body(raw_filter.encode())
        except Problem:
            raise Unprocessable(
                "The row filter is not JSON.",
                errors=[{"path": "/row_filter", "message": "must be a JSON object"}],
            ) from None
        if not isinstance(row_filter, dict):
            raise Unprocessable(
                "The row filter is a JSON object.",
                errors=[{"path": "/row_filter", "message": "must be a JSON object"}],
            )
    expires = ctx.form.get("expires_on").strip()
    expires_at = None
    if expires:
        try:
            expires_at = datetime.fromisoformat(expires).replace(tzinfo=UTC)
        except ValueError:
            raise Unprocessable(
                "The end date is not a date.",
                errors=[{"path": "/expires_on", "message": "must be a date: YYYY-MM-DD"}],
            ) from None
    narrowed = ctx.form.flag("narrow_fields")
    with validating():
        return AccessRequestApprove(
            note=ctx.form.get("note") or None,
            scopes=ctx.form.all("scopes") or None,
            fields=ctx.form.all("fields") if narrowed else None,
            row_filter=row_filter,
            expires_at=expires_at,
        )


@page()
async def approve(ctx: Ctx) -> Response:
    raw_id = ctx.request.path_params["request"]
    access: AccessService = ctx.part(AccessService)
    try:
        body = _approval(ctx)
        async with unit_of_work(ctx.pool) as work:
            await access.approve(work, ctx.principal, raw_id, body)
    except Problem as problem:
        if problem.status == 404:
            raise
        await note_denial(ctx, problem)
        view = await _provider_view(ctx)
        return ctx.render(
            "approvals.html",
            status=problem.status,
            **view,
            errors=field_errors(problem),
            message=problem.detail,
            failed=raw_id,
        )
    return redirect("/portal/approvals#grants")


@page()
async def reject(ctx: Ctx) -> Response:
    raw_id = ctx.request.path_params["request"]
    access: AccessService = ctx.part(AccessService)
    with validating():
        body = AccessRequestReject(note=ctx.form.get("note") or None)
    async with unit_of_work(ctx.pool) as work:
        await access.reject(work, ctx.principal, raw_id, body)
    return redirect("/portal/approvals")


@page()
async def revoke(ctx: Ctx) -> Response:
    raw_id = ctx.request.path_params["grant"]
    access: AccessService = ctx.part(AccessService)
    async with unit_of_work(ctx.pool) as work:
        await access.revoke(work, ctx.principal, raw_id)
    back = "/portal/approvals#grants" if ctx.form.get("from") != "app" else "/portal/apps"
    return redirect(back)
