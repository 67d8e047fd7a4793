"""People: first-run set-up, sign-in, sign-out, password change, the org switcher, home."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.responses import Response

from entrepot.orgs.models import OrgCreate
from entrepot.portal import repository as repo
from entrepot.portal import service
from entrepot.portal.web import Ctx, field_errors, model_problem, page, redirect, validating
from entrepot.problems import Conflict, Problem, Unauthorized, Unprocessable
from entrepot.settings import Settings
from entrepot.store.work import reads, unit_of_work
from entrepot.users import repository as users_repo
from entrepot.users.models import MAX_PASSWORD, MIN_PASSWORD, UserCreate
from entrepot.users.service import LOGIN_FAILED, UserService

HOME = "/portal/"
SLUG_HINT = "lowercase letters, digits, - and _"


def _next(ctx: Ctx) -> str:
    """Where to go after signing in: a portal path only (never another site)."""
    wanted = ctx.form.get("next") or ctx.request.query_params.get("next", "")
    if wanted.startswith("/portal/") and not wanted.startswith("//") and "\\" not in wanted:
        return wanted
    return HOME


async def _platform_is_empty(ctx: Ctx) -> bool:
    async with reads(ctx.pool) as reading:
        return not await users_repo.any_user(reading.conn)


@page(signed_in=False)
async def sign_in_form(ctx: Ctx) -> Response:
    if ctx.visitor.signed_in:
        return redirect(_next(ctx))
    if await _platform_is_empty(ctx):
        return redirect("/portal/setup")
    return ctx.render("sign_in.html", next=_next(ctx), email="", errors={}, message="")


@page(signed_in=False)
async def sign_in(ctx: Ctx) -> Response:
    email = ctx.form.get("email")
    password = ctx.form.get("password")
    users: UserService = ctx.part(UserService)
    try:
        if not email or not password or len(email) > 320 or len(password) > MAX_PASSWORD:
            raise Unauthorized(LOGIN_FAILED)
        user = await users.sign_in(ctx.units, email, password)
    except Problem as problem:
        return ctx.render(
            "sign_in.html",
            status=problem.status,
            next=_next(ctx),
            email=email,
            errors={},
            message=problem.detail,
        )
    settings: Settings = ctx.part(Settings)
    seconds = int(settings.portal_session_hours * 3600)
    async with unit_of_work(ctx.pool) as work:
        if ctx.visitor.session is not None:  # signing in again: the old session ends
            await repo.delete_session(work.conn, ctx.visitor.session.id)
        ctx.set_token = await service.open_session(work, user, seconds)
    ctx.set_token_seconds = seconds
    return redirect(_next(ctx))


@page(signed_in=True)
async def sign_out(ctx: Ctx) -> Response:
    session = ctx.visitor.session
    assert session is not None
    async with unit_of_work(ctx.pool) as work:
        await service.close_session(work, ctx.principal, session)
    ctx.set_token = service.new_token()  # an anonymous browser again, with a new token
    return redirect("/portal/sign-in")


@page(signed_in=False)
async def setup_form(ctx: Ctx) -> Response:
    if not await _platform_is_empty(ctx):
        return redirect("/portal/sign-in")
    return ctx.render("setup.html", values={}, errors={}, message="", hint=SLUG_HINT)


@page(signed_in=False)
async def setup(ctx: Ctx) -> Response:
    values = {k: ctx.form.get(k) for k in ("email", "org", "org_title")}
    users: UserService = ctx.part(UserService)
    try:
        if not await _platform_is_empty(ctx):
            raise Conflict("The platform is already set up: sign in instead.")
        body = _first_user(ctx)
        org, title = _first_org(ctx)
        user = await users.first_run(ctx.units, body, org, title)
    except Problem as problem:
        return ctx.render(
            "setup.html",
            status=problem.status,
            values=values,
            errors=field_errors(problem),
            message=problem.detail,
            hint=SLUG_HINT,
        )
    settings: Settings = ctx.part(Settings)
    seconds = int(settings.portal_session_hours * 3600)
    async with unit_of_work(ctx.pool) as work:
        ctx.set_token = await service.open_session(work, user, seconds)
    ctx.set_token_seconds = seconds
    return redirect(HOME)


def _first_user(ctx: Ctx) -> UserCreate:
    password = ctx.form.get("password")
    if password != ctx.form.get("password_again"):
        raise Unprocessable(
            "The two passwords differ.",
            errors=[{"path": "/password_again", "message": "must repeat the password"}],
        )
    with validating():
        return UserCreate(email=ctx.form.get("email"), password=password, is_platform_admin=True)


def _first_org(ctx: Ctx) -> tuple[str, str]:
    try:
        org = OrgCreate(name=ctx.form.get("org"), title=ctx.form.get("org_title"))
    except ValidationError as exc:
        problem = model_problem(exc)
        for error in problem.errors or []:
            error["path"] = {"/name": "/org", "/title": "/org_title"}.get(
                error["path"], error["path"]
            )
        raise problem from None
    return org.name, org.title


@page()
async def home(ctx: Ctx) -> Response:
    return ctx.render("home.html")


@page()
async def account_form(ctx: Ctx) -> Response:
    return ctx.render("account.html", errors={}, message="", done=False, min=MIN_PASSWORD)


@page()
async def change_password(ctx: Ctx) -> Response:
    users: UserService = ctx.part(UserService)
    new = ctx.form.get("new_password")
    try:
        if new != ctx.form.get("new_password_again"):
            raise Unprocessable(
                "The two new passwords differ.",
                errors=[{"path": "/new_password_again", "message": "must repeat the password"}],
            )
        if not MIN_PASSWORD <= len(new) <= MAX_PASSWORD:
            raise Unprocessable(
                f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.",
                errors=[{"path": "/new_password", "message": f"{MIN_PASSWORD} characters or more"}],
            )
        current = ctx.form.get("current_password")[:MAX_PASSWORD]
        await users.change_password(ctx.units, ctx.principal, current, new)
    except Problem as problem:
        return ctx.render(
            "account.html",
            status=problem.status,
            errors=field_errors(problem),
            message=problem.detail,
            done=False,
            min=MIN_PASSWORD,
        )
    session = ctx.visitor.session
    assert session is not None
    async with unit_of_work(ctx.pool) as work:
        await service.end_other_sessions(work, ctx.principal, session)
    return ctx.render("account.html", errors={}, message="", done=True, min=MIN_PASSWORD)


@page()
async def switch_org(ctx: Ctx) -> Response:
    session = ctx.visitor.session
    assert session is not None
    async with unit_of_work(ctx.pool) as work:
        await service.switch_org(work, ctx.principal, session, ctx.form.get("org"))
    back = ctx.form.get("back")
    return redirect(back if back.startswith("/portal/") and not back.startswith("//") else HOME)
