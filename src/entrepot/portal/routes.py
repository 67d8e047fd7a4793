"""The portal's routes, mounted at ``/portal`` by the app (inside its middleware, so the
edge's request ids, body limits, access lines and metrics cover every page).

Plain Starlette routes: the pages are not part of the API's OpenAPI document, and
need none of FastAPI's dependency solving (the wrapper in web.py does their one step).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from entrepot.portal import console_routes, rendering
from entrepot.portal.pages import access, apps, catalog, people

PREFIX = "/portal"
ASSET_CACHE = "public, max-age=31536000, immutable"


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
        Route("/", people.home, methods=get),
        Route("/static/{name}", static, methods=get),
        Route("/setup", people.setup_form, methods=get),
        Route("/setup", people.setup, methods=post),
        Route("/sign-in", people.sign_in_form, methods=get),
        Route("/sign-in", people.sign_in, methods=post),
        Route("/sign-out", people.sign_out, methods=post),
        Route("/account", people.account_form, methods=get),
        Route("/account/password", people.change_password, methods=post),
        Route("/org", people.switch_org, methods=post),
        Route("/catalog", catalog.catalogue, methods=get),
        Route("/catalog/lookup", catalog.lookup, methods=get),
        Route("/catalog/{name}", catalog.dataset, methods=get),
        Route("/catalog/{name}/access-requests", catalog.request_access, methods=post),
        Route("/requests", access.requests, methods=get),
        Route("/approvals", access.approvals, methods=get),
        Route("/approvals/{request}/approve", access.approve, methods=post),
        Route("/approvals/{request}/reject", access.reject, methods=post),
        Route("/grants/{grant}/revoke", access.revoke, methods=post),
        Route("/apps", apps.apps_list, methods=get),
        Route("/apps", apps.create_app, methods=post),
        Route("/apps/{app}", apps.app_detail, methods=get),
        Route("/apps/{app}/secret", apps.rotate_secret, methods=post),
        Route("/apps/{app}/keys", apps.create_key, methods=post),
        Route("/apps/{app}/keys/{key}/rotate", apps.rotate_key, methods=post),
        Route("/apps/{app}/keys/{key}/revoke", apps.revoke_key, methods=post),
        *console_routes.routes(),
    ]


def mount() -> Mount:
    rendering.warm()
    return Mount(PREFIX, routes=routes())
