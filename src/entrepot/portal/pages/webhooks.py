"""Webhooks of the organisation's applications: subscribe, pause, delete, rotate the
signing secret (shown once), and the delivery log with retry and replay.

Every action is a :class:`~entrepot.webhooks.service.WebhookService` call the API's
endpoints make, with the same models, so who may do what, the URL guard (SSRF), the
datasets an application may follow and what a delivery's payload shows (a narrowed
grant's fields and rows only) are the service's decisions. Nothing here reaches
into the delivery machinery.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from entrepot.apps.service import AppService
from entrepot.portal.web import (
    Ctx,
    field_errors,
    note_denial,
    page,
    redirect,
    validating,
)
from entrepot.problems import Problem
from entrepot.store.work import reads, unit_of_work
from entrepot.webhooks.models import (
    EVENTS,
    Replay,
    RotateSecret,
    WebhookCreate,
    WebhookPatch,
)
from entrepot.webhooks.service import WebhookService

LISTED = 100
DELIVERIES = 50
STATUSES = ("pending", "delivering", "delivered", "failed", "cancelled")


def _names(raw: str) -> list[str]:
    return [n.strip() for n in raw.replace("\n", ",").split(",") if n.strip()]


async def _apps(ctx: Ctx) -> list[dict[str, Any]]:
    org = ctx.visitor.org
    if org is None or not ctx.visitor.manages(org):
        return []
    apps: AppService = ctx.part(AppService)
    async with reads(ctx.pool) as reading:
        found = await apps.list_apps(
            reading, ctx.principal, org=org.name, cursor=None, limit=LISTED
        )
    return list(found["data"])


async def _list_page(
    ctx: Ctx, *, values: dict[str, Any], errors: dict[str, str], message: str, status: int
) -> Response:
    apps = await _apps(ctx)
    hooks: WebhookService = ctx.part(WebhookService)
    listed: list[tuple[dict[str, Any], dict[str, Any]]] = []
    async with reads(ctx.pool) as reading:
        for app in apps:
            found = await hooks.list_webhooks(
                reading, ctx.principal, app["id"], cursor=None, limit=LISTED
            )
            listed += [(app, hook) for hook in found["data"]]
    return ctx.render(
        "webhooks.html",
        status=status,
        apps=apps,
        hooks=listed,
        events=EVENTS,
        values=values,
        errors=errors,
        message=message,
    )


@page()
async def webhooks_list(ctx: Ctx) -> Response:
    values = {"app": ctx.request.query_params.get("app", ""), "events": list(EVENTS)}
    return await _list_page(ctx, values=values, errors={}, message="", status=200)


@page()
async def create_webhook(ctx: Ctx) -> Response:
    values: dict[str, Any] = {
        "app": ctx.form.get("app"),
        "url": ctx.form.get("url"),
        "datasets": ctx.form.get("datasets"),
        "events": ctx.form.all("events"),
    }
    hooks: WebhookService = ctx.part(WebhookService)
    try:
        with validating():
            body = WebhookCreate.model_validate(
                {
                    "url": values["url"],
                    "datasets": _names(values["datasets"]),
                    "events": values["events"] or list(EVENTS),
                }
            )
        async with unit_of_work(ctx.pool) as work:
            made = await hooks.create(work, ctx.principal, values["app"], body)
    except Problem as problem:
        if problem.status == 404 and problem.denial:
            problem.errors = [{"path": "/app", "message": "not one of your applications"}]
        await note_denial(ctx, problem)
        return await _list_page(
            ctx,
            values=values,
            errors=field_errors(problem),
            message=problem.detail,
            status=problem.status,
        )
    return ctx.render("webhook_secret.html", status=201, hook=made, secret=made["secret"])


async def _detail_page(
    ctx: Ctx,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    message: str = "",
    status: int = 200,
) -> Response:
    raw_id = ctx.request.path_params["hook"]
    wanted = ctx.request.query_params.get("status", "")
    status_filter = wanted if wanted in STATUSES else None
    hooks: WebhookService = ctx.part(WebhookService)
    async with reads(ctx.pool) as reading:
        hook = await hooks.get(reading, ctx.principal, raw_id)
        found = await hooks.deliveries(
            reading, ctx.principal, raw_id, status=status_filter, cursor=None, limit=DELIVERIES
        )
    return ctx.render(
        "webhook.html",
        status=status,
        hook=hook,
        deliveries=found["data"],
        statuses=STATUSES,
        status_filter=status_filter or "",
        notice=notice or _notice(ctx),
        errors=errors or {},
        message=message,
    )


def _notice(ctx: Ctx) -> str:
    done = ctx.request.query_params.get("done", "")
    return {
        "retried": "The delivery is queued again, due now.",
        "paused": "The webhook is paused: no delivery is attempted until it is resumed.",
        "resumed": "The webhook is resumed; deliveries cancelled by the pause are queued again.",
    }.get(done, "")


@page()
async def webhook_detail(ctx: Ctx) -> Response:
    return await _detail_page(ctx)


@page()
async def rotate_webhook_secret(ctx: Ctx) -> Response:
    raw_id = ctx.request.path_params["hook"]
    hooks: WebhookService = ctx.part(WebhookService)
    raw_overlap = ctx.form.get("overlap_seconds").strip()
    try:
        with validating():
            body = RotateSecret.model_validate(
                {"overlap_seconds": raw_overlap} if raw_overlap else {}
            )
        async with unit_of_work(ctx.pool) as work:
            made = await hooks.rotate_secret(work, ctx.principal, raw_id, body)
            hook = await hooks.get(work, ctx.principal, raw_id)
    except Problem as problem:
        if problem.status == 404:
            raise
        await note_denial(ctx, problem)
        return await _detail_page(
            ctx, errors=field_errors(problem), message=problem.detail, status=problem.status
        )
    return ctx.render(
        "webhook_secret.html",
        status=200,
        hook={**hook, "previous_secret_expires_at": made["previous_secret_expires_at"]},
        secret=made["secret"],
    )


@page()
async def set_webhook_state(ctx: Ctx) -> Response:
    raw_id = ctx.request.path_params["hook"]
    hooks: WebhookService = ctx.part(WebhookService)
    pause = ctx.form.get("state") == "paused"
    async with unit_of_work(ctx.pool) as work:
        await hooks.update(work, ctx.principal, raw_id, WebhookPatch(disabled=pause))
    return redirect(f"/portal/webhooks/{raw_id}?done={'paused' if pause else 'resumed'}")


@page()
async def delete_webhook(ctx: Ctx) -> Response:
    raw_id = ctx.request.path_params["hook"]
    hooks: WebhookService = ctx.part(WebhookService)
    async with unit_of_work(ctx.pool) as work:
        await hooks.delete(work, ctx.principal, raw_id)
    return redirect("/portal/webhooks")


@page()
async def retry_delivery(ctx: Ctx) -> Response:
    raw_id = ctx.request.path_params["hook"]
    hooks: WebhookService = ctx.part(WebhookService)
    try:
        async with unit_of_work(ctx.pool) as work:
            await hooks.retry(work, ctx.principal, raw_id, ctx.request.path_params["delivery"])
    except Problem as problem:
        if problem.status == 404:
            raise
        return await _detail_page(ctx, message=problem.detail, status=problem.status)
    return redirect(f"/portal/webhooks/{raw_id}?done=retried#deliveries")


@page()
async def replay(ctx: Ctx) -> Response:
    raw_id = ctx.request.path_params["hook"]
    hooks: WebhookService = ctx.part(WebhookService)
    try:
        with validating():
            body = Replay.model_validate(
                {"dataset": ctx.form.get("dataset"), "from_seq": ctx.form.get("from_seq")}
            )
        async with unit_of_work(ctx.pool) as work:
            done = await hooks.replay(work, ctx.principal, raw_id, body)
    except Problem as problem:
        if problem.status == 404:
            raise
        await note_denial(ctx, problem)
        return await _detail_page(
            ctx, errors=field_errors(problem), message=problem.detail, status=problem.status
        )
    more = (
        f" More remain: replay again from {done['next_from_seq']}."
        if done["next_from_seq"] is not None
        else ""
    )
    notice = (
        f"{done['enqueued']} deliver{'y' if done['enqueued'] == 1 else 'ies'} queued again "
        f"(changes {done['from_seq']} to {done['through_seq']}).{more}"
    )
    return await _detail_page(ctx, notice=notice)
