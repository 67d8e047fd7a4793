"""The request edge of every portal page: who the visitor is, the CSRF check, the
answer's cookie and headers, and problems shown as pages.

A page is a function ``async (Ctx) -> Response`` wrapped by :func:`page`. The
wrapper reads the session cookie, turns a live session into the same
:class:`~entrepot.principal.Principal` a user's access token would be (so every
service decides as it does for the API), rate limits it as the API does, checks a
POST's CSRF token before the handler runs, and renders any
:class:`~entrepot.problems.Problem` as a page with its 4xx status (denials audited
as the API audits them). A form handler that wants its errors beside its fields
catches the problem itself and re-renders its form (:func:`field_errors`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import asyncpg
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from entrepot.auditing.denials import audit_denial
from entrepot.auth.principals import subject_principal
from entrepot.limits.limiter import RateLimiter
from entrepot.parts import components
from entrepot.portal import rendering, service
from entrepot.portal import repository as repo
from entrepot.portal.forms import Form, parse_form
from entrepot.portal.repository import OrgRole, Session
from entrepot.portal.security import (
    COOKIE,
    COOKIE_PATH,
    CSRF_FIELD,
    PAGE_HEADERS,
    PortalKeys,
    csrf_token,
    csrf_valid,
)
from entrepot.portal.uploads import Upload, read_upload
from entrepot.principal import Principal
from entrepot.problems import Forbidden, Problem, Unauthorized, Unprocessable
from entrepot.settings import Settings
from entrepot.store.work import Units, reads
from entrepot.streaming import body_chunks, bulk_floor
from entrepot.users.service import USER_SCOPES
from entrepot.wording import pydantic_message

TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")
CSRF_REFUSED = "This form has expired or did not come from this site: reload the page and retry."


@dataclass
class Visitor:
    """Who is looking: a signed-in person (``session`` and ``principal``) or not."""

    token: str  # the cookie's token: a session's, or an anonymous browser's
    cookie_is_new: bool
    session: Session | None = None
    principal: Principal | None = None
    email: str = ""
    is_admin: bool = False
    orgs: list[OrgRole] = field(default_factory=list)
    org: OrgRole | None = None

    @property
    def signed_in(self) -> bool:
        return self.principal is not None

    def manages(self, org: OrgRole | None) -> bool:
        return org is not None and (self.is_admin or org.role in ("owner", "admin"))


@dataclass
class Ctx:
    """One page request: the request, its visitor, its form (POST) and the parts."""

    request: Request
    visitor: Visitor
    form: Form
    csrf: str
    set_token: str | None = None  # a new cookie token (sign-in, sign-out)
    set_token_seconds: int | None = None
    upload: Upload | None = None  # a file form's file, still streaming (page(upload=True))

    @property
    def principal(self) -> Principal:
        assert self.visitor.principal is not None  # pages for signed-in visitors only
        return self.visitor.principal

    @property
    def pool(self) -> asyncpg.Pool:
        pool: asyncpg.Pool = components(self.request).get(asyncpg.Pool)
        return pool

    def part(self, kind: type[Any]) -> Any:
        return components(self.request).get(kind)

    @property
    def units(self) -> Units:
        return Units(self.pool)

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        body = rendering.render_template(
            template,
            {
                "visitor": self.visitor,
                "csrf": self.csrf,
                "csrf_field": CSRF_FIELD,
                "path": self.request.url.path,
                **values,
            },
        )
        return HTMLResponse(body, status_code=status)


Handler = Callable[[Ctx], Awaitable[Response]]


def redirect(path: str) -> Response:
    """After a POST, to a page (303: the browser GETs it)."""
    return RedirectResponse(path, status_code=303)


def field_errors(problem: Problem) -> dict[str, str]:
    """A problem's errors by form field: ``/email`` -> ``email``; "" for the form itself."""
    found: dict[str, str] = {}
    for error in problem.errors or []:
        path = str(error.get("path", "")).lstrip("/").split("/", 1)[0]
        found.setdefault(path, str(error.get("message", "")))
    return found


def model_problem(exc: ValidationError) -> Unprocessable:
    """A request model's refusal in the API's words, its paths as the API gives them."""
    errors = [
        {
            "path": "".join("/" + str(p) for p in err.get("loc", ())),
            "message": pydantic_message(err),
        }
        for err in exc.errors()
    ]
    return Unprocessable("Some fields need another value.", errors=errors)


@contextmanager
def validating() -> Iterator[None]:
    """A block that builds a request model from a form: its refusal becomes the API's
    problem (:func:`model_problem`), which the page shows beside the fields."""
    try:
        yield
    except ValidationError as exc:
        raise model_problem(exc) from None


async def _visitor(request: Request) -> Visitor:
    given = request.cookies.get(COOKIE, "")
    if not TOKEN_SHAPE.match(given):
        return Visitor(service.new_token(), cookie_is_new=True)
    visitor = Visitor(given, cookie_is_new=False)
    pool = components(request).get(asyncpg.Pool)
    async with reads(pool) as reading:
        session = await service.find_session(reading, given)
        if session is None:
            return visitor
        orgs = await repo.orgs_of(reading.conn, session.user_id)
        email = await repo.user_email(reading.conn, session.user_id)
    try:
        principal = await subject_principal(
            pool,
            f"user:{session.user_id}",
            frozenset(USER_SCOPES),
            f"portal:{session.id}",
            None,
        )
    except Unauthorized:  # disabled between the two reads
        return visitor
    visitor.session = session
    visitor.principal = principal
    visitor.email = email or ""
    visitor.is_admin = principal.is_admin
    visitor.orgs = orgs
    visitor.org = service.current_org(session, orgs)
    request.state.principal = principal  # the access log and denials name the person
    return visitor


def _secure(request: Request) -> bool:
    settings: Settings = components(request).get(Settings)
    return request.url.scheme == "https" or settings.portal_secure_cookies


def _finish(ctx: Ctx, response: Response) -> Response:
    token = ctx.set_token
    max_age = ctx.set_token_seconds
    if token is None and ctx.visitor.cookie_is_new:
        token = ctx.visitor.token
    if token is not None:
        response.set_cookie(
            COOKIE,
            token,
            max_age=max_age,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=_secure(ctx.request),
        )
    for name, value in PAGE_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _sign_in_first(request: Request) -> Response:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/portal/sign-in?next={quote(wanted, safe='')}")


async def note_denial(ctx: Ctx, problem: Problem) -> None:
    """A denial a form shows beside its fields is audited as the API audits it."""
    if problem.denial:
        problem.denial = False  # once
        await audit_denial(ctx.request, problem)


def problem_page(ctx: Ctx, problem: Problem) -> Response:
    response = ctx.render("error.html", status=problem.status, problem=problem)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


Endpoint = Callable[[Request], Awaitable[Response]]


def page(*, signed_in: bool = True, upload: bool = False) -> Callable[[Handler], Endpoint]:
    """A portal page: ``signed_in`` pages send anyone else to the sign-in page. An
    ``upload`` page's form is multipart: its fields before the file are read (and its
    CSRF token checked) before the handler runs; the file streams in ``ctx.upload``."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            visitor = await _visitor(request)
            secret = await components(request).get(PortalKeys).secret()
            ctx = Ctx(request, visitor, Form({}), csrf_token(secret, visitor.token))
            try:
                if request.method == "POST" and upload:
                    settings: Settings = components(request).get(Settings)
                    stream = body_chunks(request.receive, bulk_floor(settings))
                    ctx.form, ctx.upload = await read_upload(
                        request.headers.get("content-type"), stream
                    )
                elif request.method == "POST":
                    ctx.form = parse_form(request.headers.get("content-type"), await request.body())
                if request.method == "POST" and (
                    visitor.cookie_is_new
                    or not csrf_valid(secret, visitor.token, ctx.form.get(CSRF_FIELD) or None)
                ):
                    raise Forbidden(CSRF_REFUSED, denial=True, reason="csrf")
                if signed_in and not visitor.signed_in:
                    return _finish(ctx, _sign_in_first(request))
                if visitor.principal is not None:
                    limiter: RateLimiter = components(request).get(RateLimiter)
                    request.state.rate_limit = await limiter.admit(visitor.principal)
                response = await handler(ctx)
            except Problem as problem:
                await note_denial(ctx, problem)
                response = problem_page(ctx, problem)
            return _finish(ctx, response)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


def parse_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None
