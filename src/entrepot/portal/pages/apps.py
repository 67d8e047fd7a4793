"""Applications: register one, its API keys (issue, rotate, revoke), its OAuth client
secret, its usage and a quickstart filled in with its own dataset and key prefix.

A secret (an API key, a client secret) is in exactly one answer: the one to the POST
that made it, never stored in a form or the session, so reloading or coming back to
the page shows the key's prefix only. That answer is ``no-store`` like every page.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from entrepot.access.service import AccessService
from entrepot.apps.models import AppCreate, KeyCreate, KeyRotate
from entrepot.apps.service import AppService
from entrepot.limits.meter import UsageMeter
from entrepot.limits.service import usage_report, usage_window
from entrepot.portal import charts
from entrepot.portal.web import (
    Ctx,
    field_errors,
    note_denial,
    page,
    redirect,
    validating,
)
from entrepot.principal import DEFAULT_APP_SCOPES, SCOPES
from entrepot.problems import Problem
from entrepot.settings import Settings
from entrepot.store.work import reads, unit_of_work

APP_SCOPES = tuple(s for s in SCOPES if s != "admin")


@page()
async def apps_list(ctx: Ctx) -> Response:
    return await _apps_page(ctx, errors={}, message="", values={}, status=200)


async def _apps_page(
    ctx: Ctx, *, errors: dict[str, str], message: str, values: dict[str, Any], status: int
) -> Response:
    org = ctx.visitor.org
    service: AppService = ctx.part(AppService)
    listed: list[dict[str, Any]] = []
    if org is not None and ctx.visitor.manages(org):
        async with reads(ctx.pool) as reading:
            found = await service.list_apps(
                reading, ctx.principal, org=org.name, cursor=None, limit=100
            )
        listed = found["data"]
    return ctx.render(
        "apps.html",
        status=status,
        apps=listed,
        scopes=APP_SCOPES,
        defaults=DEFAULT_APP_SCOPES,
        errors=errors,
        message=message,
        values=values,
    )


@page()
async def create_app(ctx: Ctx) -> Response:
    org = ctx.visitor.org
    values = {
        "name": ctx.form.get("name"),
        "description": ctx.form.get("description"),
        "scopes": ctx.form.all("scopes"),
    }
    service: AppService = ctx.part(AppService)
    try:
        with validating():
            body = AppCreate(
                org=org.name if org else "",
                name=values["name"],
                description=values["description"],
                scopes=values["scopes"] or None,
            )
        async with unit_of_work(ctx.pool) as work:
            made = await service.create(work, ctx.principal, body)
    except Problem as problem:
        await note_denial(ctx, problem)
        return await _apps_page(
            ctx,
            errors=field_errors(problem),
            message=problem.detail,
            values=values,
            status=problem.status,
        )
    return ctx.render(
        "secret.html", status=201, app=made, what="client", secret=made["client_secret"], key=None
    )


async def _app_and_keys(ctx: Ctx, raw_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    service: AppService = ctx.part(AppService)
    async with reads(ctx.pool) as reading:
        app = await service.get(reading, ctx.principal, raw_id)
        keys = await service.list_keys(reading, ctx.principal, raw_id, cursor=None, limit=100)
    return app, keys["data"]


@page()
async def app_detail(ctx: Ctx) -> Response:
    return await _app_page(ctx, errors={}, message="", status=200)


async def _app_page(ctx: Ctx, *, errors: dict[str, str], message: str, status: int) -> Response:
    raw_id = ctx.request.path_params["app"]
    app, keys = await _app_and_keys(ctx, raw_id)
    access: AccessService = ctx.part(AccessService)
    async with reads(ctx.pool) as reading:
        grants = await access.list_grants(
            reading, ctx.principal, dataset=None, app=app["id"], cursor=None, limit=100
        )
    window = usage_window("hour", None, None)
    meter: UsageMeter = ctx.part(UsageMeter)
    await meter.flush()  # this replica's latest counts are in the chart, as the API does
    async with reads(ctx.pool) as reading:
        report = await usage_report(reading, uuid.UUID(app["id"]), "hour", *window)
    live = [g for g in grants["data"] if g["status"] == "active"]
    live_keys = [k for k in keys if k["revoked_at"] is None]
    return ctx.render(
        "app.html",
        status=status,
        app=app,
        keys=keys,
        grants=live,
        chart=charts.hourly(report),
        base_url=_base_url(ctx),
        quick_dataset=live[0]["dataset"] if live else None,
        quick_prefix=live_keys[0]["prefix"] if live_keys else None,
        errors=errors,
        message=message,
    )


def _base_url(ctx: Ctx) -> str:
    settings: Settings = ctx.part(Settings)
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(ctx.request.base_url).rstrip("/")


@page()
async def create_key(ctx: Ctx) -> Response:
    raw_id = ctx.request.path_params["app"]
    service: AppService = ctx.part(AppService)
    try:
        with validating():
            body = KeyCreate(name=ctx.form.get("name"), scopes=ctx.form.all("scopes") or None)
        async with unit_of_work(ctx.pool) as work:
            made = await service.create_key(work, ctx.principal, raw_id, body)
            app = await service.get(work, ctx.principal, raw_id)
    except Problem as problem:
        if problem.status == 404:
            raise
        await note_denial(ctx, problem)
        return await _app_page(
            ctx, errors=field_errors(problem), message=problem.detail, status=problem.status
        )
    return ctx.render("secret.html", status=201, app=app, what="key", secret=made["key"], key=made)


@page()
async def rotate_key(ctx: Ctx) -> Response:
    raw_id, raw_key = ctx.request.path_params["app"], ctx.request.path_params["key"]
    service: AppService = ctx.part(AppService)
    async with unit_of_work(ctx.pool) as work:
        made = await service.rotate_key(work, ctx.principal, raw_id, raw_key, KeyRotate())
        app = await service.get(work, ctx.principal, raw_id)
    return ctx.render("secret.html", status=201, app=app, what="key", secret=made["key"], key=made)


@page()
async def revoke_key(ctx: Ctx) -> Response:
    raw_id, raw_key = ctx.request.path_params["app"], ctx.request.path_params["key"]
    service: AppService = ctx.part(AppService)
    async with unit_of_work(ctx.pool) as work:
        await service.revoke_key(work, ctx.principal, raw_id, raw_key)
    return redirect(f"/portal/apps/{raw_id}#keys")


@page()
async def rotate_secret(ctx: Ctx) -> Response:
    raw_id = ctx.request.path_params["app"]
    service: AppService = ctx.part(AppService)
    async with unit_of_work(ctx.pool) as work:
        made = await service.rotate_secret(work, ctx.principal, raw_id)
        app = await service.get(work, ctx.principal, raw_id)
    return ctx.render(
        "secret.html", status=200, app=app, what="client", secret=made["client_secret"], key=None
    )
