"""The API reference (issue 9): the OpenAPI document is valid, every operation and
parameter is described with an example, operationIds read as SDK method names,
security and problems are declared; /docs and /redoc work with no network.

The document tests need no database (the document is built from the routes);
the page and scope tests run against the app in-process.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.routing import APIRoute
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from entrepot.app import create_app
from entrepot.auth.authenticate import authenticate_reader
from entrepot.auth.feed_reader import feed_reader
from entrepot.principal import SCOPES
from entrepot.problems import PROBLEM_CONTENT_TYPE
from entrepot.reference.document import METHODS, usual_problems
from entrepot.reference.operations import OPERATIONS, PUBLIC
from entrepot.settings import Settings
from tests.factories import make_app, make_dataset, make_key, make_org

APP = create_app(Settings(database_url="postgresql://unused.invalid/none"))
DOCUMENT = APP.openapi()
OPERATION_ID = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")
# FastAPI's generated ids: the function name, the path and the method, underscored.
GENERATED_ID = re.compile(r"_(get|put|post|patch|delete)$|__|_v1_")
PUBLIC_OPERATIONS = {
    "GET /",
    "GET /healthz",
    "GET /readyz",
    "GET /.well-known/jwks.json",
    "GET /.well-known/oauth-authorization-server",
    "POST /oauth/token",
    "POST /v1/auth/token",
}
# Error answers that are not problem documents, by RFC or by design.
NOT_PROBLEMS = {
    ("POST /oauth/token", "400"): "RFC 6749 5.2 error (with a problem for edge refusals)",
    ("POST /oauth/token", "401"): "RFC 6749 5.2 invalid_client",
    ("GET /healthz", "503"): "a probe's JSON answer",
    ("GET /readyz", "503"): "a probe's JSON answer",
}


def resolved(response: dict[str, Any]) -> dict[str, Any]:
    """A response, or the shared one it refers to."""
    ref = response.get("$ref")
    if ref is None:
        return response
    found: dict[str, Any] = DOCUMENT["components"]["responses"][ref.rsplit("/", 1)[1]]
    return found


def operations() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


# --- the document -------------------------------------------------------------------


def test_the_document_passes_the_openapi_validator() -> None:
    try:
        validate(DOCUMENT)
    except OpenAPIValidationError as exc:  # pragma: no cover - the message is the point
        pytest.fail(f"openapi-spec-validator: {exc}")


def test_every_route_has_an_entry_and_every_entry_a_route() -> None:
    documented = {name for name, _ in operations()}
    assert documented == set(OPERATIONS), (
        f"without an entry: {sorted(documented - set(OPERATIONS))}; "
        f"stale: {sorted(set(OPERATIONS) - documented)}"
    )


def test_operation_ids_are_explicit_unique_and_sdk_like() -> None:
    ids = [operation["operationId"] for _, operation in operations()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for name, operation in operations():
        op_id = operation["operationId"]
        assert OPERATION_ID.match(op_id), (name, op_id)
        assert not GENERATED_ID.search(op_id), (name, op_id)
    assert {
        "records.get",
        "records.list",
        "records.create",
        "datasets.create",
        "apps.keys.rotate",
    } <= set(ids)


def _declared_routes() -> Iterator[tuple[str, Any]]:
    """Every declared operation's route, as ``METHOD /path``. FastAPI keeps an included
    router's routes behind one entry of ``app.routes``, each as a context carrying the
    route's effective path, texts and dependencies."""
    found = 0
    for route in APP.routes:
        declared = getattr(route, "effective_route_contexts", None)
        for each in declared() if declared is not None else [route]:
            route_of = each.original_route if declared is not None else each
            if isinstance(route_of, APIRoute) and each.include_in_schema:
                for method in each.methods:
                    found += 1
                    yield f"{method} {each.path}", each
    assert found > 50, "the routes were not found: has FastAPI changed how it keeps them?"


def test_each_text_has_one_source() -> None:
    """A summary or description lives on the route or in the table, never both."""
    for name, route in _declared_routes():
        entry = OPERATIONS[name]
        if route.summary:
            assert entry.summary is None, f"{name}: the route declares a summary"
        else:  # FastAPI would make one of the function's name: "Create Org"
            assert entry.summary, f"{name}: no summary, on the route or in the table"
        if route.description:
            assert not entry.description, f"{name}: the route declares a description"


def test_every_tag_is_described() -> None:
    described = {tag["name"] for tag in DOCUMENT["tags"] if tag["description"]}
    used = {tag for _, operation in operations() for tag in operation["tags"]}
    assert used <= described, used - described


def test_every_operation_is_described() -> None:
    for name, operation in operations():
        assert operation.get("summary", "").strip(), name
        assert len(operation.get("description", "")) >= 40, name
        assert "security" in operation, name
        assert operation.get("tags"), name


def test_every_parameter_is_described_with_an_example() -> None:
    count = 0
    for name, operation in operations():
        for parameter in operation.get("parameters", []):
            count += 1
            where = (name, parameter["in"], parameter["name"])
            assert parameter.get("description", "").strip(), where
            examples = [e["value"] for e in parameter.get("examples", {}).values()]
            assert "example" in parameter or any(v != "" for v in examples), where
            if examples:  # "Try it out" leaves it out unless one is picked
                assert examples[0] == "", where
                assert not parameter.get("required"), where
    assert count > 100


def test_every_request_body_has_an_example() -> None:
    for name, operation in operations():
        body = operation.get("requestBody")
        if body is None:
            continue
        for media, content in body["content"].items():
            assert "example" in content or content.get("examples"), (name, media)


def test_security_schemes_and_each_operation_s_scopes() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token"
    assert list(flow["scopes"]) == list(SCOPES)
    for name, operation in operations():
        if name in PUBLIC_OPERATIONS:
            assert operation["security"] == [], name
            continue
        bearer, oauth2, *anonymous = operation["security"]
        assert anonymous == ([{}] if OPERATIONS[name].open_data else []), name
        assert list(bearer) == ["bearer"], name
        assert list(oauth2) == ["oauth2"], name
        assert bearer["bearer"] == oauth2["oauth2"], name
        assert len(oauth2["oauth2"]) <= 1, name
        assert set(oauth2["oauth2"]) <= set(SCOPES), name
    public = {name for name, entry in OPERATIONS.items() if entry.scope == PUBLIC}
    assert public == PUBLIC_OPERATIONS


# The feed's step takes a stream ticket or else is authenticate_reader.
ADMITTING = (authenticate_reader, feed_reader)


def test_operations_open_to_anonymous_callers_are_those_that_admit_them() -> None:
    """``open_data`` (security: {} too) marks exactly the routes whose auth step lets a
    caller with no credential read open datasets."""
    admitting = {
        name
        for name, route in _declared_routes()
        if any(d.call in ADMITTING for d in route.dependant.dependencies)
        and not name.startswith("HEAD ")
    }
    marked = {name for name, entry in OPERATIONS.items() if entry.open_data}
    assert admitting == marked
    assert marked  # the catalog, records, export and the feed


def test_error_answers_are_problem_documents() -> None:
    problem = DOCUMENT["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "errors", "request_id"} <= set(
        problem["properties"]
    )
    for name, operation in operations():
        for code, declared in operation["responses"].items():
            response = resolved(declared)
            assert code != "4XX", name
            assert "HTTPValidationError" not in str(response), (name, code)
            if code[0] not in "45" or (name, code) in NOT_PROBLEMS:
                continue
            content = response.get("content", {})
            assert content.get(PROBLEM_CONTENT_TYPE, {}).get("schema") == {
                "$ref": "#/components/schemas/Problem"
            }, (name, code)
            assert "Problem type: `https://entrepot.dev/problems/" in response["description"]
    for name in ("HTTPValidationError", "ValidationError"):
        assert name not in DOCUMENT["components"]["schemas"]


def test_bad_parameters_are_declared_as_400_and_bad_bodies_as_422() -> None:
    for name, operation in operations():
        responses = operation["responses"]
        assert "400" in responses, name  # the edge refuses malformed URLs everywhere
        if "requestBody" in operation and name not in ("POST /v1/datasets/{ds}/import",):
            assert "422" in responses, name
        if name not in PUBLIC_OPERATIONS:
            assert {"401", "429", "503"} <= set(responses), name
    lists = DOCUMENT["paths"]["/v1/datasets"]["get"]["responses"]
    assert "400" in lists
    assert "422" not in lists


def test_usual_problems_compose_by_kind() -> None:
    record_get = OPERATIONS["GET /v1/datasets/{ds}/records/{record_id}"]
    assert usual_problems("get", "/v1/datasets/{ds}/records/{record_id}", record_get, False) == {
        400,
        401,
        403,
        404,
        429,
        503,
    }
    create = OPERATIONS["POST /v1/datasets/{ds}/records"]
    assert {409, 413, 422} <= usual_problems("post", "/v1/datasets/{ds}/records", create, True)
    health = OPERATIONS["GET /healthz"]
    assert usual_problems("get", "/healthz", health, False) == {400}


def test_hot_routes_declare_their_exact_shapes() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    record = schemas["Record"]
    assert set(record["required"]) == {"id", "version", "data", "created_at", "updated_at"}
    assert record["additionalProperties"] is False
    page = schemas["RecordPage"]
    assert set(page["required"]) == {"data", "next_cursor"}
    records = DOCUMENT["paths"]["/v1/datasets/{ds}/records"]
    assert records["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RecordPage"
    }
    created = records["post"]["responses"]["201"]
    assert {"ETag", "Location"} <= set(created["headers"])
    changes = DOCUMENT["paths"]["/v1/datasets/{ds}/changes"]["get"]["responses"]["200"]
    assert changes["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChangePage"
    }


# --- the pages ----------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def _urls(page: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    # Swagger UI's configuration names the document in a script: url: '/openapi.json'.
    configured = re.findall(r"\burl:\s*'([^']+)'", page)
    absolute = re.findall(r"""https?://[^\s"'<>)]+""", page)
    return parser.urls + configured + absolute


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/"])
async def test_pages_load_nothing_from_another_host(anon: httpx.AsyncClient, page: str) -> None:
    response = await anon.get(page, headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    urls = _urls(response.text)
    assert urls, page
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme, f"{page} points off-host: {url}"
        assert not parts.netloc, f"{page} points off-host: {url}"
        asset = await anon.get(url)
        assert asset.status_code == 200, (page, url, asset.status_code)
        assert asset.content, (page, url)


async def test_docs_use_the_vendored_builds_and_keep_the_authorization(
    anon: httpx.AsyncClient,
) -> None:
    docs = (await anon.get("/docs")).text
    assert '"persistAuthorization": true' in docs
    assert '"validatorUrl": null' in docs
    bundle = await anon.get("/reference/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert b'PACKAGE_VERSION:"5.' in bundle.content  # Swagger UI 5 reads OpenAPI 3.1
    redoc = await anon.get("/reference/assets/redoc.standalone.js")
    assert b"ReDoc Version" in redoc.content
    assert (await anon.get("/docs/oauth2-redirect")).status_code == 200
    assert bundle.headers["cache-control"] == "public, max-age=86400"
    for outside in ("core.py", "..%2Fcore.py", "%2E%2E%2F__init__.py", "nope.js"):
        assert (await anon.get(f"/reference/assets/{outside}")).status_code == 404, outside


async def test_the_root_answers_api_clients_as_before_and_browsers_with_a_page(
    anon: httpx.AsyncClient,
) -> None:
    unmatched = await anon.get("/no-such-page-here", headers={"X-Request-ID": "same"})
    for accept in (None, "application/json", "*/*"):
        headers = {"X-Request-ID": "same", **({"Accept": accept} if accept else {})}
        root = await anon.get("/", headers=headers)
        assert root.status_code == 404
        assert root.content == unmatched.content  # byte for byte
        assert root.headers["content-type"] == unmatched.headers["content-type"]
    page = await anon.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200
    assert page.headers["vary"] == "Accept"
    for link in ('href="/docs"', 'href="/redoc"', 'href="/openapi.json"', "docs/quickstart.md"):
        assert link in page.text


# --- declared scopes are enforced ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/datasets"),
        ("GET", "/v1/datasets/{ds}"),
        ("GET", "/v1/datasets/{ds}/records"),
        ("POST", "/v1/datasets/{ds}/records"),
        ("GET", "/v1/datasets/{ds}/changes"),
        ("GET", "/v1/datasets/{ds}/export"),
        ("GET", "/v1/apps/{app}/webhooks"),
    ],
)
async def test_a_key_without_the_declared_scope_is_refused(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, method: str, path: str
) -> None:
    operation = DOCUMENT["paths"][path][method.lower()]
    (needed,) = operation["security"][1]["oauth2"]
    org = (await make_org(client))["name"]
    ds = (await make_dataset(client, org=org))["name"]
    every = [s for s in SCOPES if s != "admin"]
    app = await make_app(client, org, scopes=every)
    without = (await make_key(client, app["id"], scopes=[s for s in every if s != needed]))["key"]
    with_it = (await make_key(client, app["id"], scopes=[needed]))["key"]
    url = path.replace("{ds}", ds).replace("{app}", app["id"])
    body = {"sku": "s-1", "name": "Thing", "price": 1} if method == "POST" else None

    async def call(key: str) -> httpx.Response:
        return await anon.request(
            method, url, json=body, headers={"Authorization": f"Bearer {key}"}
        )

    refused = await call(without)
    assert refused.status_code == 403, refused.text
    assert needed in refused.json()["detail"]
    allowed = await call(with_it)
    assert allowed.status_code in (200, 201), allowed.text
    assert str(refused.status_code) in operation["responses"]


async def test_the_authorize_dialog_s_client_credentials_request_is_accepted(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    """What Swagger UI sends for the oauth2 scheme: the declared tokenUrl, the form with
    the scopes ticked (none: an empty value), the client by HTTP Basic or in the body."""
    flow = DOCUMENT["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    org = (await make_org(client))["name"]
    app = await make_app(client, org, scopes=["datasets:read", "records:read"])
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    basic = await anon.post(
        flow["tokenUrl"],
        content=b"grant_type=client_credentials&scope=",
        headers=form,
        auth=(app["client_id"], app["client_secret"]),
    )
    assert basic.status_code == 200, basic.text
    in_body = await anon.post(
        flow["tokenUrl"],
        content=(
            f"grant_type=client_credentials&scope=datasets%3Aread&client_id={app['client_id']}"
            f"&client_secret={app['client_secret']}"
        ).encode(),
        headers=form,
    )
    assert in_body.status_code == 200, in_body.text
    assert in_body.json()["scope"] == "datasets:read"
    token = basic.json()["access_token"]
    listed = await anon.get("/v1/datasets", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200, listed.text
