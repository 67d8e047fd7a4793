"""The reference's pages, served with no network: Swagger UI at ``/docs``, ReDoc at
``/redoc``, and a small landing page at ``/`` for browsers.

Their scripts and styles are the builds the ``fastapi-offline`` package ships
(Swagger UI 5, ReDoc 2), served by us under :data:`ASSETS`; nothing a page
loads comes from another host (tests/browser checks it in Chromium).
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from entrepot.http import StrictJsonRoute

ASSETS = "/reference/assets"
# The files of the package's build that the pages load, and nothing else of it.
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
ASSET_CACHE = {"Cache-Control": "public, max-age=86400"}
# ReDoc's sidebar shows Redocly's logo from their CDN (an <img>, whatever the options):
# the browser must not fetch it (a request off the host, the reader's address to a third
# party). Images come from the server or data: URIs only; nothing else is restricted.
PAGE_POLICY = {"Content-Security-Policy": "img-src 'self' data:"}
DOCS, REDOC, OAUTH2_REDIRECT = "/docs", "/redoc", "/docs/oauth2-redirect"
SWAGGER_PARAMETERS = {
    "persistAuthorization": True,  # the Authorize dialog's token survives a reload
    "displayOperationId": True,  # the SDK's method names
    "displayRequestDuration": True,
    "filter": True,
    "tryItOutEnabled": True,
    "validatorUrl": None,  # else the badge asks validator.swagger.io about our document
}
DOC_PAGES = (  # README's list
    ("quickstart.md", "first dataset and records in five minutes"),
    ("datasets-and-records.md", "schemas, records, lists, filters"),
    ("bulk.md", "NDJSON and CSV import, streaming export (also Parquet and Arrow)"),
    ("access.md", "users, apps, API keys, OAuth, access requests, grants, audit"),
    ("portal.md", "the developer portal at /portal, for people in a browser"),
    ("sync.md", "the change feed, long poll, SSE and the entrepot sync agent"),
    ("webhooks.md", "signed deliveries, retries, replay"),
    ("limits.md", "plans, rate limits, quotas, usage reports"),
    ("errors.md", "the problem documents the API returns"),
    ("operations.md", "settings, health, metrics, logs, migrations"),
)


def asset_directory() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def _landing(title: str, version: str, openapi_url: str) -> str:
    docs = "\n".join(
        f"      <li><code>docs/{html.escape(name)}</code>: {html.escape(text)}</li>"
        for name, text in DOC_PAGES
    )
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{html.escape(title)}</title>
  <link rel="icon" href="{ASSETS}/favicon.png">
  <style>
    body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 3rem auto;
           padding: 0 1rem; color: #1f2328; }}
    h1 {{ margin-bottom: 0; }} .version {{ color: #59636e; margin-top: 0; }}
    a {{ color: #0969da; }} code {{ background: #f6f8fa; padding: 0 .2em; }}
  </style>
</head>
<body>
  <h1>{html.escape(title)}</h1>
  <p class="version">API version {html.escape(version)}</p>
  <p>Publish datasets, grant access, read, write and sync records over one API under
  <code>/v1</code>. Authenticate with <code>Authorization: Bearer &lt;API key or access
  token&gt;</code>; errors are problem documents (RFC 9457).</p>
  <h2>API reference</h2>
  <ul>
    <li><a href="{DOCS}">Interactive reference</a> (Swagger UI: try calls with
    <em>Authorize</em>)</li>
    <li><a href="{REDOC}">Reference to read</a> (ReDoc)</li>
    <li><a href="{html.escape(openapi_url)}">OpenAPI document</a>
    (<code>{html.escape(openapi_url)}</code>, OpenAPI 3.1)</li>
  </ul>
  <h2>Documentation</h2>
  <p>In the source distribution, one page per feature:</p>
  <ul>
{docs}
  </ul>
  <h2>Portal</h2>
  <p>A web portal for providers and consumers is planned; until then, everything it will
  do is in the API.</p>
</body>
</html>
"""


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "").lower()


def include(app: FastAPI) -> None:
    """Add the pages and their assets to ``app`` (built with docs_url=redoc_url=None)."""
    router = APIRouter(route_class=StrictJsonRoute)
    openapi_url = app.openapi_url or "/openapi.json"

    @router.get(
        "/",
        tags=["reference"],
        summary="Landing page for browsers",
        response_class=HTMLResponse,
        responses={200: {"description": "The landing page.", "content": {"text/html": {}}}},
    )
    async def home(request: Request) -> HTMLResponse:
        if not _wants_html(request):  # the answer API clients always had here
            raise StarletteHTTPException(status_code=404)
        return HTMLResponse(
            _landing(app.title, app.version, openapi_url), headers={"Vary": "Accept"}
        )

    @router.get(DOCS, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title}: API reference",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )
        page.headers.update(PAGE_POLICY)
        return page

    @router.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get(REDOC, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title}: API reference",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(PAGE_POLICY)
        return page

    directory = asset_directory()

    # A route, not a static mount: requests for assets are counted and logged under
    # their template like every other route's, not as unmatched.
    @router.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        media_type = ASSET_TYPES.get(name)
        if media_type is None:
            raise StarletteHTTPException(status_code=404)
        return FileResponse(directory / name, media_type=media_type, headers=ASSET_CACHE)

    app.include_router(router)
