"""The catalogue: search and browse datasets, a dataset's page, asking for access.

Everything a page shows comes from the services the API calls, as the signed-in
person, or, when they choose one of their organisation's applications
(``?app=``), as that application: then a narrowed grant shows only what it lets the
application see (fields, rows, and no counts), exactly as the API would answer it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.responses import Response

from entrepot.access.models import GRANTABLE_SCOPES, AccessRequestCreate
from entrepot.access.resolver import AccessResolver
from entrepot.access.service import AccessService
from entrepot.apps.service import AppService
from entrepot.auth.principals import subject_principal
from entrepot.catalog import service as catalog
from entrepot.limits.meter import UsageMeter
from entrepot.limits.service import dataset_usage_report, usage_window
from entrepot.pagination import decode_cursor, fingerprint
from entrepot.portal import charts, views
from entrepot.portal.web import (
    Ctx,
    field_errors,
    note_denial,
    page,
    redirect,
    validating,
)
from entrepot.principal import Principal
from entrepot.problems import BadRequest, Forbidden, NotFound, Problem
from entrepot.records.service import RecordService
from entrepot.store.work import reads, unit_of_work

REQUESTED_BY_DEFAULT = ("datasets:read", "records:read")  # what reading it takes
PAGE_SIZE = 20
SAMPLE_SIZE = 5
MAX_QUERY = 200


@page()
async def catalogue(ctx: Ctx) -> Response:
    query = ctx.request.query_params
    q = query.get("q", "")[:MAX_QUERY].strip()
    tag = query.get("tag", "")[:MAX_QUERY].strip()
    cursor = query.get("cursor") or None
    if cursor:
        decode_cursor(cursor, fingerprint("datasets", q or None, None, tag or None))
    async with reads(ctx.pool) as reading:
        found = await catalog.list_datasets(
            reading, ctx.principal, q=q, org=None, tag=tag, cursor=cursor, limit=PAGE_SIZE
        )
    response = ctx.render(
        "catalog.html", datasets=found["data"], next_cursor=found["next_cursor"], q=q, tag=tag
    )
    if ctx.request.headers.get("hx-request") == "true":  # typed into the search box
        shown = urlencode([(k, v) for k, v in (("q", q), ("tag", tag)) if v])
        response.headers["HX-Push-Url"] = "/portal/catalog" + (f"?{shown}" if shown else "")
    return response


@page()
async def lookup(ctx: Ctx) -> Response:
    """A restricted dataset is listed only to those who may read it: a person who was
    told its name opens its page (and its request form) by name."""
    name = ctx.request.query_params.get("name", "").strip()
    if not views.is_slug(name):
        raise BadRequest(
            "A dataset's name has lowercase letters, digits, - and _.",
            errors=[{"path": "/name", "message": "not a dataset name"}],
        )
    return redirect(f"/portal/catalog/{name}")


async def _managed_apps(ctx: Ctx) -> list[dict[str, Any]]:
    """The applications of the current organisation that this person manages."""
    org = ctx.visitor.org
    if org is None:
        return []
    apps: AppService = ctx.part(AppService)
    async with reads(ctx.pool) as reading:
        listed = await apps.list_apps(reading, ctx.principal, org=org.name, cursor=None, limit=100)
    return [a for a in listed["data"] if not a["disabled"]]


async def app_principal(ctx: Ctx, raw_app: str) -> tuple[Principal, dict[str, Any]]:
    """Who an application the person manages is, read now as its access token would
    make it: the same principal every service decides for. The apps service shows a
    person only the apps of the organisations they administer (404 for any other)."""
    apps: AppService = ctx.part(AppService)
    async with reads(ctx.pool) as reading:
        app = await apps.get(reading, ctx.principal, raw_app)
    session = ctx.visitor.session
    assert session is not None
    principal = await subject_principal(
        ctx.pool, f"app:{app['id']}", frozenset(app["scopes"]), f"portal:{session.id}", None
    )
    return principal, app


@dataclass(frozen=True, slots=True)
class DatasetUsage:
    """A dataset's requests in the last day: every app's for its provider, the
    person's own organisation's apps' for anyone else (``by_app``: name or id, count)."""

    chart: charts.Chart
    by_app: list[tuple[str, int]]
    everyone: bool


async def _dataset_usage(ctx: Ctx, name: str, apps: list[dict[str, Any]]) -> DatasetUsage | None:
    """What the API's ``GET /v1/datasets/{ds}/usage`` answers a provider; for a consumer,
    the same report narrowed to the apps they manage (each one's own usage report)."""
    async with reads(ctx.pool) as reading:
        everyone = await catalog.provides(reading, ctx.principal, name)
    if not everyone and not apps:
        return None
    window = usage_window("hour", None, None)
    meter: UsageMeter = ctx.part(UsageMeter)
    await meter.flush()  # this replica's latest counts, as the API's reports do
    only = None if everyone else [uuid.UUID(a["id"]) for a in apps]
    async with reads(ctx.pool) as reading:
        report = await dataset_usage_report(reading, name, "hour", *window, only)
    totals: Counter[str] = Counter()
    for row in report["data"]:
        totals[row["app"]] += int(row["count"])
    names = {a["id"]: a["name"] for a in apps}
    by_app = [(names.get(app, app), n) for app, n in totals.most_common()]
    return DatasetUsage(charts.hourly(report), by_app, everyone)


@page()
async def dataset(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    if not views.is_slug(name):
        raise NotFound(f"Dataset {name!r} does not exist or is not visible to you.")
    return await _dataset_page(ctx, name, errors={}, message="", status=200)


async def _dataset_page(
    ctx: Ctx, name: str, *, errors: dict[str, str], message: str, status: int
) -> Response:
    raw_app = ctx.request.query_params.get("app", "") or ctx.form.get("as_app")
    apps = await _managed_apps(ctx)
    viewer, as_app = ctx.principal, None
    if raw_app:
        viewer, as_app = await app_principal(ctx, raw_app)
    access: AccessResolver = ctx.part(AccessResolver)
    records: RecordService = ctx.part(RecordService)
    async with reads(ctx.pool) as reading:
        refusal = None
        try:
            shown = await catalog.get_dataset(reading, access, viewer, name)
        except (NotFound, Forbidden) as problem:  # audited by the service's denial
            await note_denial(ctx, problem)
            shown, refusal = None, problem
        if shown is None:
            assert refusal is not None
            return ctx.render(
                "dataset_hidden.html",
                status=refusal.status if not errors else status,
                refusal=refusal.detail,
                name=name,
                apps=apps,
                as_app=as_app,
                scopes=GRANTABLE_SCOPES,
                errors=errors,
                message=message,
                values=_request_values(ctx),
            )
        activity = await catalog.dataset_activity(reading, access, viewer, name)
        fields = views.field_rows(shown["schema"], shown["primary_key"])
        columns = [f.name for f in fields]
        try:
            sample = await records.list(reading, viewer, name, [("limit", str(SAMPLE_SIZE))])
            rows = views.sample_rows(sample.items, columns)
            sample_note = ""
        except Problem as problem:  # no records:read: the schema is still shown
            rows, sample_note = [], problem.detail
    usage = await _dataset_usage(ctx, name, apps)
    return ctx.render(
        "dataset.html",
        status=status,
        name=name,
        ds=shown,
        fields=fields,
        columns=columns,
        rows=rows,
        sample_note=sample_note,
        activity=activity,
        usage=usage,
        apps=apps,
        as_app=as_app,
        scopes=GRANTABLE_SCOPES,
        errors=errors,
        message=message,
        values=_request_values(ctx),
        schema_text=orjson.dumps(shown["schema"], option=orjson.OPT_INDENT_2).decode(),
    )


def _request_values(ctx: Ctx) -> dict[str, Any]:
    return {
        "app": ctx.form.get("app"),
        "scopes": ctx.form.all("scopes") or list(REQUESTED_BY_DEFAULT),
        "reason": ctx.form.get("reason"),
    }


@page()
async def request_access(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    service: AccessService = ctx.part(AccessService)
    try:
        with validating():
            body = AccessRequestCreate(
                app=ctx.form.get("app"),
                scopes=ctx.form.all("scopes"),
                reason=ctx.form.get("reason"),
            )
        async with unit_of_work(ctx.pool) as work:
            made = await service.create_request(work, ctx.principal, name, body)
    except Problem as problem:
        if problem.denial and problem.status == 404:
            raise
        await note_denial(ctx, problem)
        return await _dataset_page(
            ctx, name, errors=field_errors(problem), message=problem.detail, status=problem.status
        )
    return redirect(f"/portal/requests#r-{made['id']}")
