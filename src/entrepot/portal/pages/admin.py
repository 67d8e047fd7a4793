"""The admin console, for platform administrators only: platform health, plans (list,
create, move an application to one), organisations, and people.

Anyone else gets the 403 page, and the refusal is audited as the API audits a denial.
Every action is the service call the API makes (``PlanService``, ``orgs.service``,
``UserService``, ``AppService.update`` for a plan change), so each is checked and
audited there too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response

from entrepot.apps.models import AppPatch
from entrepot.apps.service import AppService
from entrepot.limits.models import PlanCreate
from entrepot.limits.service import PlanService
from entrepot.orgs import service as orgs
from entrepot.orgs.models import OrgCreate
from entrepot.parts import components
from entrepot.portal import health
from entrepot.portal.web import (
    Ctx,
    field_errors,
    note_denial,
    page,
    redirect,
    validating,
)
from entrepot.principal import require_platform_admin
from entrepot.problems import Problem
from entrepot.store.work import reads, unit_of_work
from entrepot.users.models import MemberAdd, UserCreate, UserPatch
from entrepot.users.service import UserService

LISTED = 200
ROLES = ("owner", "admin", "member")
Handler = Callable[[Ctx], Awaitable[Response]]


def admin_page(handler: Handler) -> Callable[..., Any]:
    """A console page: the visitor must be a platform administrator (403, audited)."""

    async def checked(ctx: Ctx) -> Response:
        require_platform_admin(ctx.principal)
        return await handler(ctx)

    checked.__name__ = handler.__name__
    checked.__doc__ = handler.__doc__
    return page()(checked)


def _optional(raw: str) -> str | None:
    return raw.strip() or None


# --- health -----------------------------------------------------------------------


@admin_page
async def console(ctx: Ctx) -> Response:
    measured = await health.measure(components(ctx.request))
    return ctx.render("admin_health.html", health=measured)


# --- plans ------------------------------------------------------------------------


async def _plans_page(
    ctx: Ctx,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    message: str,
    status: int,
    form: str = "",
) -> Response:
    plans: PlanService = ctx.part(PlanService)
    apps: AppService = ctx.part(AppService)
    async with reads(ctx.pool) as reading:
        listed = await plans.list_plans(reading, None, LISTED)
        found = await apps.list_apps(reading, ctx.principal, org=None, cursor=None, limit=LISTED)
    return ctx.render(
        "admin_plans.html",
        status=status,
        plans=listed["data"],
        apps=found["data"],
        values=values,
        errors=errors,
        message=message,
        form=form,
    )


@admin_page
async def plans_page(ctx: Ctx) -> Response:
    return await _plans_page(ctx, values={}, errors={}, message="", status=200)


@admin_page
async def create_plan(ctx: Ctx) -> Response:
    names = ("name", "rate_per_second", "burst", "daily_quota", "monthly_quota")
    values = {n: ctx.form.get(n) for n in names}
    plans: PlanService = ctx.part(PlanService)
    try:
        with validating():
            body = PlanCreate.model_validate(
                {
                    "name": values["name"].strip(),
                    "rate_per_second": values["rate_per_second"].strip(),
                    "burst": values["burst"].strip(),
                    "daily_quota": _optional(values["daily_quota"]),
                    "monthly_quota": _optional(values["monthly_quota"]),
                }
            )
        async with unit_of_work(ctx.pool) as work:
            await plans.create(work, ctx.principal, body)
    except Problem as problem:
        await note_denial(ctx, problem)
        return await _plans_page(
            ctx,
            values=values,
            errors=field_errors(problem),
            message=problem.detail,
            status=problem.status,
            form="create",
        )
    return redirect("/portal/admin/plans")


@admin_page
async def assign_plan(ctx: Ctx) -> Response:
    values = {"app": ctx.form.get("app"), "plan": ctx.form.get("plan")}
    apps: AppService = ctx.part(AppService)
    try:
        with validating():
            patch = AppPatch.model_validate({"plan": values["plan"]})
        async with unit_of_work(ctx.pool) as work:
            await apps.update(work, ctx.principal, values["app"], patch)
    except Problem as problem:
        await note_denial(ctx, problem)
        return await _plans_page(
            ctx,
            values=values,
            errors=field_errors(problem),
            message=problem.detail,
            status=problem.status,
            form="assign",
        )
    return redirect("/portal/admin/plans#apps")


# --- organisations ----------------------------------------------------------------


async def _orgs_page(
    ctx: Ctx, *, values: dict[str, Any], errors: dict[str, str], message: str, status: int
) -> Response:
    async with reads(ctx.pool) as reading:
        listed = await orgs.list_orgs(reading, ctx.principal, cursor=None, limit=LISTED)
    return ctx.render(
        "admin_orgs.html",
        status=status,
        orgs=listed["data"],
        more=listed["next_cursor"] is not None,
        values=values,
        errors=errors,
        message=message,
    )


@admin_page
async def orgs_page(ctx: Ctx) -> Response:
    return await _orgs_page(ctx, values={}, errors={}, message="", status=200)


@admin_page
async def create_org(ctx: Ctx) -> Response:
    values = {"name": ctx.form.get("name"), "title": ctx.form.get("title")}
    try:
        with validating():
            body = OrgCreate(name=values["name"].strip(), title=values["title"])
        async with unit_of_work(ctx.pool) as work:
            await orgs.create_org(work, ctx.principal, body.name, body.title)
    except Problem as problem:
        return await _orgs_page(
            ctx,
            values=values,
            errors=field_errors(problem),
            message=problem.detail,
            status=problem.status,
        )
    return redirect("/portal/admin/orgs")


# --- people -----------------------------------------------------------------------


async def _users_page(
    ctx: Ctx,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    message: str,
    status: int,
    form: str = "",
) -> Response:
    users: UserService = ctx.part(UserService)
    async with reads(ctx.pool) as reading:
        listed = await users.list_users(reading, ctx.principal, cursor=None, limit=LISTED)
        org_list = await orgs.list_orgs(reading, ctx.principal, cursor=None, limit=LISTED)
    return ctx.render(
        "admin_users.html",
        status=status,
        users=listed["data"],
        more=listed["next_cursor"] is not None,
        orgs=org_list["data"],
        roles=ROLES,
        values=values,
        errors=errors,
        message=message,
        form=form,
    )


@admin_page
async def users_page(ctx: Ctx) -> Response:
    return await _users_page(ctx, values={}, errors={}, message="", status=200)


@admin_page
async def create_user(ctx: Ctx) -> Response:
    values: dict[str, Any] = {
        "email": ctx.form.get("email"),
        "is_platform_admin": ctx.form.flag("is_platform_admin"),
    }
    users: UserService = ctx.part(UserService)
    try:
        with validating():
            body = UserCreate(
                email=values["email"].strip(),
                password=ctx.form.get("password"),
                is_platform_admin=values["is_platform_admin"],
            )
        async with reads(ctx.pool) as reading:
            await users.create_user(reading, ctx.principal, body)
    except Problem as problem:
        return await _users_page(
            ctx,
            values=values,
            errors=field_errors(problem),
            message=problem.detail,
            status=problem.status,
            form="create",
        )
    return redirect("/portal/admin/users")


@admin_page
async def set_user_state(ctx: Ctx) -> Response:
    users: UserService = ctx.part(UserService)
    disabled = ctx.form.get("state") == "disabled"
    async with unit_of_work(ctx.pool) as work:
        await users.update_user(
            work, ctx.principal, ctx.request.path_params["user"], UserPatch(disabled=disabled)
        )
    return redirect("/portal/admin/users")


@admin_page
async def add_member(ctx: Ctx) -> Response:
    values = {
        "member_email": ctx.form.get("email"),
        "org": ctx.form.get("org"),
        "role": ctx.form.get("role"),
    }
    users: UserService = ctx.part(UserService)
    try:
        with validating():
            body = MemberAdd.model_validate(
                {"email": values["member_email"].strip(), "role": values["role"]}
            )
        async with unit_of_work(ctx.pool) as work:
            await users.add_member(work, ctx.principal, values["org"], body)
    except Problem as problem:
        errors = field_errors(problem)
        if "email" in errors:
            errors["member_email"] = errors.pop("email")
        return await _users_page(
            ctx,
            values=values,
            errors=errors,
            message=problem.detail,
            status=problem.status,
            form="member",
        )
    return redirect("/portal/admin/users")
