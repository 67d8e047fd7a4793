"""The portal's routes, mounted at ``/portal`` by the app (inside its middleware, so the
edge's request ids, body limits, access lines and metrics cover every page).

Plain Starlette routes: the pages are not part of the API's OpenAPI document, and
need none of FastAPI's dependency solving (the wrapper in web.py does their one step).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from entrepot.portal import console_routes, rendering
from entrepot.portal.pages import access, apps, catalog, people

PREFIX = "/portal"
ASSET_CACHE = "public, max-age=31536000, immutable"


class PortalRoute(Route):
    """A page's route. Its ``path`` names it as a visitor sees it (``/portal/...``), which
    is how the access log and the metrics label it; matching, done on the compiled
    pattern, stays relative to the mount."""

    def __init__(self, path: str, endpoint: Any, *, methods: list[str]) -> None:
        super().__init__(path, endpoint, methods=methods)
        self.path = PREFIX + path


async def static(request: Request) -> Response:
    asset = rendering.ASSETS.get(request.path_params["name"])
    if asset is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    return Response(
        asset.body,
        media_type=asset.media_type,
        headers={"Cache-Control": ASSET_CACHE, "X-Content-Type-Options": "nosniff"},
    )


def routes() -> list[BaseRoute]:
    get, post = ["GET"], ["POST"]
    return [
        PortalRoute("/", people.home, methods=get),
        PortalRoute("/static/{name}", static, methods=get),
        PortalRoute("/setup", people.setup_form, methods=get),
        PortalRoute("/setup", people.setup, methods=post),
        PortalRoute("/sign-in", people.sign_in_form, methods=get),
        PortalRoute("/sign-in", people.sign_in, methods=post),
        PortalRoute("/sign-out", people.sign_out, methods=post),
        PortalRoute("/account", people.account_form, methods=get),
        PortalRoute("/account/password", people.change_password, methods=post),
        PortalRoute("/org", people.switch_org, methods=post),
        PortalRoute("/catalog", catalog.catalogue, methods=get),
        PortalRoute("/catalog/lookup", catalog.lookup, methods=get),
        PortalRoute("/catalog/{name}", catalog.dataset, methods=get),
        PortalRoute("/catalog/{name}/access-requests", catalog.request_access, methods=post),
        PortalRoute("/requests", access.requests, methods=get),
        PortalRoute("/approvals", access.approvals, methods=get),
        PortalRoute("/approvals/{request}/approve", access.approve, methods=post),
        PortalRoute("/approvals/{request}/reject", access.reject, methods=post),
        PortalRoute("/grants/{grant}/revoke", access.revoke, methods=post),
        PortalRoute("/apps", apps.apps_list, methods=get),
        PortalRoute("/apps", apps.create_app, methods=post),
        PortalRoute("/apps/{app}", apps.app_detail, methods=get),
        PortalRoute("/apps/{app}/secret", apps.rotate_secret, methods=post),
        PortalRoute("/apps/{app}/keys", apps.create_key, methods=post),
        PortalRoute("/apps/{app}/keys/{key}/rotate", apps.rotate_key, methods=post),
        PortalRoute("/apps/{app}/keys/{key}/revoke", apps.revoke_key, methods=post),
        *(PortalRoute(path, page, methods=[method]) for path, method, page in console_routes.PAGES),
    ]


def mount() -> Mount:
    rendering.warm()
    return Mount(PREFIX, routes=routes())
