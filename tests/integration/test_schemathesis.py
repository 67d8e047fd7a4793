"""Schemathesis against our own OpenAPI document, in process, on the real database.

Schemathesis drives its own instance of the app (built from the session
``settings``, so the same PostgreSQL database the other integration tests use)
through its ASGI transport, which runs the app and its lifespan on a private
event loop thread. The session ``client`` seeds a real organisation, datasets
and records first, and hooks point a share of the generated requests at them,
so the deep paths (validation, storage, preconditions) are exercised, not just
the 404s. Checks: no 5xx, and status code, content type and body conform to
the document wherever it describes the response (every 4xx as a problem).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import fastapi.routing
import httpx
import jsonschema_rs
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.definitions import OPENAPI_31

from entrepot.app import create_app
from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.factories import make_dataset, make_org

MAX_EXAMPLES = 40


@dataclass(frozen=True)
class Seeded:
    org: str
    datasets: tuple[str, ...]  # record operations target these
    record_ids: tuple[str, ...]
    metadata_target: str  # PATCH /v1/datasets/{ds} edits only this one
    victims: tuple[str, ...]  # DELETE /v1/datasets/{ds} may remove these


@pytest.fixture(scope="module")
async def seeded(client: httpx.AsyncClient) -> Seeded:
    org = (await make_org(client))["name"]
    products = (await make_dataset(client, org=org, indexes=["price"]))["name"]
    keyed = (await make_dataset(client, org=org, primary_key="sku"))["name"]
    schemaless = (await make_dataset(client, org=org, schema={"type": "object"}))["name"]
    strict = (await make_dataset(client, org=org, primary_key="sku", require_if_match=True))["name"]
    record_ids = []
    for i in range(3):
        record = {"sku": f"sku-{i}", "name": f"Thing {i}", "price": i + 0.5, "stock": i}
        for ds in (products, keyed, schemaless, strict):
            response = await client.post(f"/v1/datasets/{ds}/records", json=record)
            assert response.status_code == 201, response.text
            record_ids.append(response.json()["id"])
    metadata_target = (await make_dataset(client, org=org))["name"]
    victims = tuple([(await make_dataset(client, org=org))["name"] for _ in range(3)])
    return Seeded(
        org=org,
        datasets=(products, keyed, schemaless, strict),
        record_ids=tuple(dict.fromkeys(record_ids)),
        metadata_target=metadata_target,
        victims=victims,
    )


@pytest.fixture(scope="module")
def schemathesis_app(settings: Settings) -> Iterator[FastAPI]:
    """A second app instance on the same database; schemathesis runs its lifespan."""
    application = create_app(settings)
    yield application
    schemathesis_asgi.shutdown_lifespans()  # closes this app's pool on its own loop


def _substitutions(seeded: Seeded, method: str, path: str) -> dict[str, list[str]]:
    if path == "/v1/datasets/{ds}" and method == "delete":
        datasets = list(seeded.victims)
    elif path == "/v1/datasets/{ds}" and method == "patch":
        datasets = [seeded.metadata_target]
    else:
        datasets = list(seeded.datasets)
    return {"ds": datasets, "record_id": list(seeded.record_ids), "org": [seeded.org]}


# Schemathesis collects one test per operation at import time, so the document
# comes from an app object that is never started (the document needs no
# database; a test below checks it is byte for byte what /openapi.json serves),
# and the requests go to `schemathesis_app`, passed at call time.
# (`schemathesis.pytest.from_fixture` would load it lazily, but schemathesis
# 4.32 reads `Node._nodeid`, which pytest 9.2 no longer has.)
_DOCUMENT = create_app(Settings(database_url="postgresql://unused.invalid/none")).openapi()
# The bulk import body is text (NDJSON or CSV): send generated strings as they are.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schemathesis.serializer.alias("text/csv", "text/plain")
_SEEDED: list[Seeded] = []

schema = schemathesis.openapi.from_dict(
    _DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
            "generation": {"max-examples": MAX_EXAMPLES},
        }
    ),
)


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Keep the generated value, or swap in a real org / dataset / record id."""
    operation = context.operation
    if operation is None or not _SEEDED or not path_parameters:
        return st.just(path_parameters)
    real = _substitutions(_SEEDED[-1], operation.method.lower(), operation.path)
    present = [name for name in real if name in path_parameters]
    choices = [path_parameters]
    for name in present:
        choices += [{**path_parameters, name: value} for value in real[name]]
    if len(present) == 2:
        choices += [
            {**path_parameters, "ds": ds, "record_id": record_id}
            for ds in real["ds"]
            for record_id in real["record_id"]
        ]
    return st.sampled_from(choices)


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Dataset creation needs an existing org and an object schema to get past 422."""
    operation = context.operation
    if operation is None or not _SEEDED or not isinstance(body, dict):
        return st.just(body)
    if (operation.method.lower(), operation.path) != ("post", "/v1/datasets"):
        return st.just(body)
    with_org = {**body, "org": _SEEDED[-1].org}
    schema = body.get("schema")
    plain = {k: v for k, v in with_org.items() if k not in ("indexes", "primary_key")}
    plain["schema"] = {**(schema if isinstance(schema, dict) else {}), "type": "object"}
    return st.sampled_from([body, with_org, plain])


@schema.hook
def map_query(context: schemathesis.HookContext, query: Any) -> Any:
    """Long polls may hold a request up to 60 s: keep generated waits short."""
    if isinstance(query, dict) and isinstance(query.get("wait"), int | float):
        return {**query, "wait": min(query["wait"], 0.1)}
    return query


@pytest.fixture(scope="module")
def seeded_for_hooks(seeded: Seeded) -> Iterator[Seeded]:
    _SEEDED.append(seeded)
    yield seeded
    _SEEDED.remove(seeded)


@schema.parametrize()
def test_no_server_errors_and_documented_responses_conform(
    case: schemathesis.Case[Any], schemathesis_app: FastAPI, seeded_for_hooks: Seeded
) -> None:
    case.call_and_validate(
        app=schemathesis_app,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


# --- the document itself -------------------------------------------------------------


def _inline_schemas(node: Any) -> Iterator[Any]:
    """Every Schema Object in an OpenAPI document (parameter, body and response schemas)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema":
                yield value
            else:
                yield from _inline_schemas(value)
    elif isinstance(node, list):
        for item in node:
            yield from _inline_schemas(item)


async def test_openapi_document_is_valid_openapi_31(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc == _DOCUMENT  # what schemathesis tested is what the app serves
    assert doc["openapi"].startswith("3.1.")
    validator = jsonschema_rs.Draft202012Validator(OPENAPI_31)
    errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []
    # OAS 3.1 Schema Objects are JSON Schema 2020-12; the OAS meta-schema does not check them.
    for sub in [
        *_inline_schemas(doc["paths"]),
        *doc.get("components", {}).get("schemas", {}).values(),
    ]:
        jsonschema_rs.meta.validate(sub)


FRAMEWORK_ROUTES = {
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/reference/assets/{name}",  # the pages' scripts and styles (entrepot.reference.pages)
}


def _route_table(app: FastAPI) -> Iterator[tuple[str, frozenset[str], bool]]:
    """(path, methods, include_in_schema) for every HTTP route, through included routers."""
    # FastAPI 0.16x keeps included routers as branches; older versions list flat routes.
    iter_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: Iterable[Any] = iter_contexts(app.routes) if iter_contexts else app.routes
    for route in routes:
        methods = getattr(route, "methods", None)
        path = getattr(route, "path", None)
        if methods and path:
            # A direct route stands for its declared route: shown if that one is.
            original = getattr(route, "declared", None) or getattr(route, "original_route", route)
            shown = bool(getattr(original, "include_in_schema", True))
            yield str(path), frozenset(methods), shown


async def test_openapi_document_lists_every_route(app: FastAPI, client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    documented = {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace")
    }
    table = list(_route_table(app))
    routed = {
        (path, method) for path, methods, shown in table if shown for method in methods - {"HEAD"}
    }
    assert len(routed) > 10, table
    assert routed == documented
    hidden = {path for path, _, shown in table if not shown} - FRAMEWORK_ROUTES
    assert hidden == set(), f"routes hidden from the OpenAPI document: {hidden}"
    for path, method in documented:
        operation = doc["paths"][path][method.lower()]
        assert operation.get("summary") or operation.get("operationId"), (path, method)


# --- what the fuzzing found, replayed every run -------------------------------------


async def test_fuzzing_findings_stay_fixed(client: httpx.AsyncClient) -> None:
    """Each of these was a 500 (or silent damage) before the fix noted beside it."""
    org = (await make_org(client))["name"]
    ds = (await make_dataset(client, org=org, indexes=["price"]))["name"]
    json_type = {"content-type": "application/json"}

    def dataset(name: str, schema: str, **extra: str) -> bytes:
        fields = "".join(f', "{k}": {v}' for k, v in extra.items())
        return (
            f'{{"name": "{name}", "org": "{org}", "title": "t", "schema": {schema}{fields}}}'
        ).encode()

    cases: list[tuple[str, str, bytes, int]] = [
        # NUL in a URL reached PostgreSQL text (middleware now refuses it).
        ("GET", "/v1/datasets?org=%00", b"", 400),
        ("GET", f"/v1/datasets/{ds}/records/%00", b"", 400),
        ("GET", "/v1/datasets/a%00b", b"", 400),
        # NUL, lone surrogates and NaN in catalog bodies (models now refuse them).
        ("POST", "/v1/orgs", b'{"name": "nul-title", "title": "\\u0000"}', 422),
        (
            "POST",
            "/v1/datasets",
            dataset("nul-key", '{"type": "object", "properties": {"a\\u0000": {}}}'),
            422,
        ),
        ("POST", "/v1/datasets", dataset("nul-tag", '{"type": "object"}', tags='["\\u0000"]'), 422),
        # NaN and numbers beyond double range are not JSON: a 400, as on record routes.
        ("POST", "/v1/datasets", dataset("nan", '{"type": "object", "default": NaN}'), 400),
        ("POST", "/v1/datasets", dataset("inf", '{"type": "object", "examples": [1e400]}'), 400),
        ("PATCH", f"/v1/datasets/{ds}", b'{"tags": ["\\ud800"]}', 422),
        ("PATCH", f"/v1/datasets/{ds}", b'{"title": "a\\u0000"}', 422),
        # An empty schema skipped validation and bricked the dataset (service fix).
        ("PATCH", f"/v1/datasets/{ds}", b'{"schema": {}}', 422),
    ]
    for method, url, body, status in cases:
        response = await client.request(method, url, content=body, headers=json_type)
        assert response.status_code == status, (method, url, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    records = await client.get(f"/v1/datasets/{ds}/records")
    assert records.status_code == 200, records.text
    # `indexes: []` was silently ignored (service fix): it now drops them all.
    cleared = await client.patch(f"/v1/datasets/{ds}", json={"indexes": []})
    assert cleared.status_code == 200
    assert cleared.json()["indexes"] == []
