"""The hottest routes served without FastAPI's dependency solver, through the same stack.

Profiling GET-one-record (bench/RESULTS.md) put FastAPI's included-router
matching and dependency solving at about 40% of the request. A direct route
is the very endpoint function declared on its ``APIRouter`` (so the OpenAPI
document, the name and the route template stay that declaration's), served
by a plain Starlette route placed first in the app's table:

- the endpoint's arguments come from a plan made once, when the app is built,
  from its signature; it may ask only for what the plan knows how to give:
  path parameters as text, the ``Request``, the principal (``authenticate``,
  the one auth step every route takes, or ``authenticate_reader``, the same step
  letting an anonymous caller read open datasets), the app's parts by type
  (``Depends(part(RecordService))``) and a unit of work last (``Reading``,
  ``PlannedReading``, ``Work`` or ``LazyWork``, ended before the answer is sent, as those
  dependencies are). An
  endpoint that asks for anything else (a validated query parameter, a new
  dependency) or a route with dependencies of its own is refused at startup,
  never served with something silently skipped;
- errors go to the app's exception handlers, looked up as Starlette looks them
  up for every other route (``DirectDispatch``), and the middleware around it
  is the app's own;
- a request whose method the route does not serve falls through to the
  declared route, so a 405 and its ``Allow`` header are the router's.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.routing import APIRoute, APIRouter
from starlette._exception_handler import (
    ExceptionHandlers,
    StatusHandlers,
    _lookup_exception_handler,
)
from starlette._utils import get_route_path
from starlette.convertors import StringConvertor
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from entrepot.auth.authenticate import (
    CurrentPrincipal,
    CurrentReader,
    authenticate,
    authenticate_reader,
)
from entrepot.auth.tickets import take_from_query
from entrepot.parts import Part, components
from entrepot.principal import Principal
from entrepot.work_deps import OPENERS, Opener

Authenticator = Callable[[Request], Awaitable[Principal]]
AUTH_STEPS: dict[object, Authenticator] = {
    CurrentPrincipal: authenticate,
    CurrentReader: authenticate_reader,
}


@dataclass(frozen=True, slots=True)
class Plan:
    """Where each of an endpoint's arguments comes from."""

    path_params: tuple[str, ...]
    request: str | None
    principal: tuple[str, Authenticator] | None
    parts: tuple[tuple[str, type[Any]], ...]
    unit: tuple[str, Opener] | None


def _part_of(hint: object) -> type[Any] | None:
    """The part an ``Annotated[T, Depends(part(T))]`` hint asks for, else None."""
    for meta in getattr(hint, "__metadata__", ()):
        dependency = getattr(meta, "dependency", None)
        if isinstance(dependency, Part):
            return dependency.kind
    return None


def plan_for(route: APIRoute) -> Plan:
    """The plan for ``route``'s endpoint, or TypeError naming what cannot be given."""
    where = f"{route.endpoint.__module__}.{route.endpoint.__name__}"
    if route.dependencies:
        raise TypeError(f"{where}: a direct route takes no route-level dependencies")
    hints = typing.get_type_hints(route.endpoint, include_extras=True)
    path_params: list[str] = []
    parts: list[tuple[str, type[Any]]] = []
    request: str | None = None
    principal: tuple[str, Authenticator] | None = None
    unit: tuple[str, Opener] | None = None
    for name, parameter in inspect.signature(route.endpoint).parameters.items():
        hint = hints.get(name)
        if unit is not None:
            raise TypeError(f"{where}: the unit of work must be the last parameter")
        if parameter.default is not inspect.Parameter.empty:
            raise TypeError(f"{where}: {name!r} has a default; a direct route has no options")
        if hint is str and name in route.param_convertors:
            path_params.append(name)
        elif hint is Request:
            request = name
        elif hint in AUTH_STEPS:
            principal = (name, AUTH_STEPS[hint])
        elif hint in OPENERS:
            unit = (name, OPENERS[hint])
        elif (kind := _part_of(hint)) is not None:
            parts.append((name, kind))
        else:
            raise TypeError(f"{where}: a direct route cannot give {name!r} ({hint!r})")
    return Plan(tuple(path_params), request, principal, tuple(parts), unit)


Endpoint = Callable[..., Awaitable[Response]]


def serving(endpoint: Endpoint, plan: Plan) -> Callable[[Request], Awaitable[Response]]:
    """``request -> response``: the endpoint called as FastAPI would call it."""

    async def serve(request: Request) -> Response:
        params = request.path_params
        kwargs: dict[str, Any] = {name: params[name] for name in plan.path_params}
        if plan.request is not None:
            kwargs[plan.request] = request
        if plan.principal is not None:
            name, auth_step = plan.principal
            kwargs[name] = await auth_step(request)
        found = components(request)
        for name, kind in plan.parts:
            kwargs[name] = found.get(kind)
        if plan.unit is None:
            return await endpoint(**kwargs)
        name, opener = plan.unit
        async with opener(found) as unit:
            kwargs[name] = unit
            return await endpoint(**kwargs)

    return serve


class DirectRoute(Route):
    """A Starlette route standing for one declared ``APIRoute``."""

    def __init__(self, declared: APIRoute) -> None:
        self.serve = serving(declared.endpoint, plan_for(declared))
        super().__init__(
            declared.path,
            self.serve,
            methods=sorted(declared.methods or ()),
            name=declared.name,
            include_in_schema=False,
        )
        self.declared = declared
        # Every path parameter of the hot routes is text: nothing to convert.
        self._as_text = all(isinstance(c, StringConvertor) for c in self.param_convertors.values())

    def path_params(self, scope: Scope) -> dict[str, Any] | None:
        """The path parameters when the path is this route's, else None (the method is
        the dispatch's to check): ``matches`` without the child scope built around it."""
        found = self.path_regex.match(get_route_path(scope))
        if found is None:
            return None
        params = found.groupdict()
        if not self._as_text:
            for key, convertor in self.param_convertors.items():
                params[key] = convertor.convert(params[key])
        inherited = scope.get("path_params")
        return {**inherited, **params} if inherited else params

    def child_scope(self, params: dict[str, Any]) -> Scope:
        """What a match adds to the request's scope; ``route`` is what metrics, logs and
        metering read."""
        return {"endpoint": self.endpoint, "path_params": params, "route": self.declared}

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        params = self.path_params(scope) if scope["type"] == "http" else None
        if params is None or scope["method"] not in (self.methods or ()):
            return Match.NONE, {}  # the declared route answers (405, Allow) as before
        return Match.FULL, self.child_scope(params)


def direct_routes(routers: Sequence[APIRouter]) -> list[BaseRoute]:
    """A direct route for every route of ``routers``, in their order."""
    return [
        DirectRoute(route)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]


class DirectDispatch:
    """The app's direct routes first; anything else to ``fallback`` (the exception
    handlers around the router, inside the per-request file stack FastAPI's own routes
    need).

    A matched request is served and its errors rendered here, by the handlers of
    ``errors`` (the ``ExceptionMiddleware`` around the fallback: one table of handlers,
    one renderer), looked up as Starlette looks them up. Not through ``Route.handle`` nor
    that middleware: each would build the request again and wrap every message sent, on
    the hottest routes. An endpoint returns its response before anything is sent, so an
    error it raises always finds the answer unstarted; one raised while a streamed body
    is sent goes on to the edge, which logs it and cuts the connection, as before. Only
    the routes serving the request's method are tried, so a method a route does not
    serve falls through to the router and its 405.
    """

    def __init__(self, routes: Sequence[DirectRoute], errors: ExceptionMiddleware) -> None:
        self.routes = tuple(routes)
        self.fallback = errors
        # Starlette keeps the handlers it resolved from the app's table on the
        # middleware; reading them there keeps both paths on the very same table.
        self._handlers: ExceptionHandlers = errors._exception_handlers
        self._status_handlers: StatusHandlers = errors._status_handlers
        by_method: dict[str, list[DirectRoute]] = {}
        for route in self.routes:
            for method in route.methods or ():
                by_method.setdefault(method, []).append(route)
        self._by_method = {method: tuple(found) for method, found in by_method.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self._by_method.get(scope["method"], ()):
                params = route.path_params(scope)
                if params is None:
                    continue
                scope.update(route.child_scope(params))
                request = Request(scope, receive, send)
                try:
                    response = await route.serve(request)
                except Exception as exc:
                    response = await self._render(request, exc)
                await response(scope, receive, send)
                return
        await self.fallback(scope, receive, send)

    async def _render(self, request: Request, exc: Exception) -> Response:
        """The answer the app's handlers give ``exc`` (Starlette's lookup: a status
        handler for an ``HTTPException``, else the nearest class in the exception's
        MRO); re-raised when none handles it (the edge answers 500)."""
        handler = None
        if isinstance(exc, HTTPException):
            handler = self._status_handlers.get(exc.status_code)
        if handler is None:
            handler = _lookup_exception_handler(self._handlers, exc)
        if handler is None:
            raise exc
        render = typing.cast("Callable[[Request, Exception], Awaitable[Response]]", handler)
        response = await render(request, exc)  # the app's handlers are all async
        exc.__traceback__ = None  # a reused exception instance would pile tracebacks up
        return response


class DirectAPI(FastAPI):
    """FastAPI with the stack every request shares, and nothing in it that serves no one.

    The user middleware (``EdgeMiddleware``: request ids, limits, logs, metrics and
    the 500 every path answers) wraps the dispatch: direct routes first, their errors
    rendered by the app's exception handlers (the one problem renderer), else those
    handlers' middleware around the router. Left
    out: Starlette's outer error middleware (the edge renders and logs 500s; its
    second 500 path was dead code), FastAPI's app-wide body limit (the edge limits
    bodies, per route class) and its exception telemetry (kept, with FastAPI's own
    stack, when OpenTelemetry is on). Measured in bench/RESULTS.md.
    """

    _plain_stack: ASGIApp | None = None  # the stack below, when FastAPI adds nothing to it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            take_from_query(scope)  # before FastAPI's telemetry records the URL
            if self._plain_stack is not None:
                # What FastAPI's and Starlette's __call__ do for an HTTP request without
                # telemetry or a root path, two frames fewer on every request.
                scope["app"] = self
                await self._plain_stack(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        self._plain_stack = None
        if self._native_telemetry.enabled():
            return super().build_middleware_stack()
        handlers = {k: v for k, v in self.exception_handlers.items() if k not in (500, Exception)}
        direct = [r for r in self.router.routes if isinstance(r, DirectRoute)]
        errors = ExceptionMiddleware(
            AsyncExitStackMiddleware(self.router), handlers=handlers, debug=self.debug
        )
        app: ASGIApp = DirectDispatch(direct, errors)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        if not self.root_path:
            self._plain_stack = app
        return app
