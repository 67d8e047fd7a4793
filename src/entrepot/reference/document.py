"""The OpenAPI document as a reference: FastAPI's generated document, completed.

:func:`describe` gives every operation its operationId, summary, description and
security (from ``operations.OPERATIONS``), every parameter a description and an
example (``parameters.py``), every request body an example, and declares the
problems each operation can answer (RFC 9457, the shared ``Problem`` schema) in
place of FastAPI's 422 ``HTTPValidationError``, which this API never sends: a
bad parameter is a 400 and a bad body a 422, both problem documents
(``errors.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from entrepot.principal import SCOPES
from entrepot.problems import PROBLEM_BASE, PROBLEM_CONTENT_TYPE, PROBLEM_SCHEMA, Problem
from entrepot.reference import parameters
from entrepot.reference.operations import OPERATIONS, PUBLIC, TAGS, Operation

METHODS = ("get", "put", "post", "patch", "delete")
PROBLEM_REF = "#/components/schemas/Problem"
TOKEN_URL = "/oauth/token"  # noqa: S105 (a path, not a secret)
BEARER, OAUTH2 = "bearer", "oauth2"

SCOPE_TEXT = {
    "datasets:read": "See datasets in the catalog and read their metadata.",
    "records:read": "Read records: get, list, export.",
    "records:write": "Create, replace, patch, delete and import records.",
    "changes:read": "Follow a dataset's change feed.",
    "webhooks:manage": "Manage the app's own webhooks and their deliveries.",
    "admin": "Administer the app's organisation: datasets, apps, keys, grants, members, "
    "audit. Platform-wide operations need a platform administrator besides.",
}
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`POST /v1/apps/{app}/keys`), an app's access token "
        "(`POST /oauth/token`) or a user's (`POST /v1/auth/token`), as "
        "`Authorization: Bearer <token>`. A key or token holds a subset of its app's scopes.",
    },
    OAUTH2: {
        "type": "oauth2",
        "description": "OAuth 2.0 client credentials (RFC 6749 4.4) with an app's `client_id` "
        "and `client_secret`; the token endpoint takes HTTP Basic or form fields.",
        "flows": {"clientCredentials": {"tokenUrl": TOKEN_URL, "scopes": {}}},
    },
}

_HEADER = {"schema": {"type": "string"}}
RETRY_AFTER = {"Retry-After": {**_HEADER, "description": "Seconds to wait before retrying."}}
PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            **_HEADER,
            "description": 'Bearer realm="entrepot", error="invalid_request" (no credential) '
            'or error="invalid_token".',
        }
    },
    409: RETRY_AFTER,
    429: {
        **RETRY_AFTER,
        "RateLimit-Limit": {**_HEADER, "description": "The plan's burst."},
        "RateLimit-Remaining": {**_HEADER, "description": "Requests left now."},
        "RateLimit-Reset": {**_HEADER, "description": "Seconds until the bucket is full."},
    },
    503: RETRY_AFTER,
}
# The usual problems, once each under components/responses; operations refer to them
# unless they say something of their own about a status.
SHARED_RESPONSES: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "PayloadTooLarge",
    422: "ValidationFailed",
    429: "TooManyRequests",
    503: "Unavailable",
}
GENERIC: dict[int, str] = {
    400: "A malformed URL or query parameter (an unknown or invalid value, a NUL byte).",
    401: "No credential, or one that is malformed, unknown, expired, revoked or disabled.",
    403: "Authenticated, but not allowed: the credential lacks the scope or role this needs.",
    404: "It does not exist, or it is not visible to you (never 403 for what you cannot see).",
    409: "A concurrent change conflicted with this one; retry it.",
    413: "The body exceeds the size limit.",
    422: "The body is invalid: `errors` lists each failure with a JSON Pointer `path`.",
    429: "Over your plan's rate limit or quota; retry after `Retry-After` seconds.",
    503: "The store is unavailable or failing over; retry after `Retry-After` seconds.",
}


def _problem_classes(cls: type[Problem] = Problem) -> Iterator[type[Problem]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _problem_classes(sub)


def problem_types() -> dict[int, list[str]]:
    """Every problem type by status, from the exception classes that render them."""
    found: dict[int, list[str]] = {}
    for cls in _problem_classes():
        found.setdefault(cls.status, []).append(PROBLEM_BASE + cls.slug)
    return found


def usual_problems(method: str, path: str, operation: Operation, has_body: bool) -> set[int]:
    """What any operation of this kind can answer, whatever it does."""
    statuses = {400}  # the edge refuses malformed URLs on every route
    if has_body:
        statuses |= {413, 422}
    if operation.scope == PUBLIC:
        return statuses
    statuses |= {401, 429, 503}
    if operation.scope is not None:
        statuses.add(403)
    if "{" in path:
        statuses.add(404)
    if method != "get":
        statuses.add(409)  # deadlocks and serialisation failures: retry
    return statuses


def _problem_response(status: int, text: str, types: dict[int, list[str]]) -> dict[str, Any]:
    kinds = types.get(status, [PROBLEM_BASE + "bad-request"])
    description = text or GENERIC.get(status, "A problem document (RFC 9457).")
    example = {
        "type": kinds[0],
        "title": _title(kinds[0]),
        "status": status,
        "detail": description.replace("`", ""),
        "request_id": "req-7f3a9c",
    }
    response: dict[str, Any] = {
        "description": f"{description} Problem type: {', '.join(f'`{k}`' for k in kinds)}.",
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_REF}, "example": example}},
    }
    if status in PROBLEM_HEADERS:
        response["headers"] = copy.deepcopy(PROBLEM_HEADERS[status])
    return response


def _title(type_uri: str) -> str:
    slug = type_uri.removeprefix(PROBLEM_BASE)
    return next((c.title for c in _problem_classes() if c.slug == slug), "Problem")


def _security(operation: Operation) -> list[dict[str, list[str]]]:
    if operation.scope == PUBLIC:
        return []
    scopes = [] if operation.scope is None else [operation.scope]
    schemes: list[dict[str, list[str]]] = [{BEARER: scopes}, {OAUTH2: list(scopes)}]
    return [*schemes, {}] if operation.open_data else schemes  # {}: no credential at all


def _is_framework_error(response: Any) -> bool:
    """FastAPI's own 422 (HTTPValidationError), which errors.py never sends."""
    return "HTTPValidationError" in str(response)


def _describe_parameters(op_id: str, operation_doc: dict[str, Any]) -> None:
    for param in operation_doc.get("parameters", []):
        known = parameters.describe(op_id, param["in"], param["name"])
        if known is None:
            continue
        if not param.get("description") and known.description:
            param["description"] = known.description
        if "example" in param or "examples" in param:
            continue
        if known.only_on_request and not param.get("required"):
            param["examples"] = {
                "not sent": {"summary": "Not sent", "value": ""},
                "example": {"summary": "For example", "value": known.example},
            }
        else:
            param["example"] = known.example


def _json_like(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _describe_body(operation: Operation, operation_doc: dict[str, Any]) -> None:
    body = operation_doc.get("requestBody")
    if body is None or operation.example is None:
        return
    for media, content in body.get("content", {}).items():
        if "example" in content or "examples" in content:
            continue
        structured = _json_like(media) or media == "application/x-www-form-urlencoded"
        if structured != isinstance(operation.example, str):
            content["example"] = operation.example


def _describe_responses(
    method: str, path: str, operation: Operation, operation_doc: dict[str, Any]
) -> None:
    responses: dict[str, Any] = operation_doc.setdefault("responses", {})
    for code in [c for c, r in responses.items() if c == "4XX" or _is_framework_error(r)]:
        del responses[code]
    for status, example in operation.responses.items():
        for media, content in responses.get(str(status), {}).get("content", {}).items():
            if _json_like(media):
                content.setdefault("example", example)
    types = problem_types()
    statuses = usual_problems(method, path, operation, "requestBody" in operation_doc)
    statuses |= set(operation.problems)
    statuses |= {int(c) for c, r in responses.items() if c[:1] in "45" and not r.get("content")}
    for status in sorted(statuses):
        text = operation.problems.get(status, "")
        problem = _problem_response(status, text, types)
        declared = responses.get(str(status))
        if declared is None and not text and status in SHARED_RESPONSES:
            responses[str(status)] = {"$ref": f"#/components/responses/{SHARED_RESPONSES[status]}"}
        elif declared is None or not declared.get("content"):
            if declared is not None and not text:  # the route says when, in its words
                problem["description"] = declared["description"]
            responses[str(status)] = problem
        elif PROBLEM_CONTENT_TYPE not in declared.get("content", {}):
            # A non-problem answer of the same status (RFC 6749 errors): both can happen.
            declared.setdefault("content", {}).update(problem["content"])


def operations_of(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc.get("paths", {}).items():
        for method, operation_doc in item.items():
            if method in METHODS:
                yield method, path, operation_doc


def describe(doc: dict[str, Any]) -> dict[str, Any]:
    """Complete FastAPI's document in place (see the module's docstring)."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = copy.deepcopy(PROBLEM_SCHEMA)
    schemes = copy.deepcopy(SECURITY_SCHEMES)
    schemes[OAUTH2]["flows"]["clientCredentials"]["scopes"] = {s: SCOPE_TEXT[s] for s in SCOPES}
    components["securitySchemes"] = schemes
    types = problem_types()
    components["responses"] = {
        name: _problem_response(status, "", types) for status, name in SHARED_RESPONSES.items()
    }
    used = {tag for _, _, op in operations_of(doc) for tag in op.get("tags", [])}
    doc["tags"] = [
        {"name": name, "description": text} for name, text in TAGS.items() if name in used
    ]
    missing = []
    for method, path, operation_doc in operations_of(doc):
        operation = OPERATIONS.get(f"{method.upper()} {path}")
        if operation is None:
            missing.append(f"{method.upper()} {path}")
            continue
        operation_doc["operationId"] = operation.id
        if operation.summary:  # else the route's own
            operation_doc["summary"] = operation.summary
        if operation.description:
            operation_doc["description"] = operation.description
        operation_doc["security"] = _security(operation)
        _describe_parameters(operation.id, operation_doc)
        _describe_body(operation, operation_doc)
        _describe_responses(method, path, operation, operation_doc)
    if missing:
        raise LookupError(f"reference/operations.py describes no operation {missing}")
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return doc


def install(app: Any) -> None:
    """Serve the described document at the app's openapi_url (built once, on first use).

    ``app`` is the FastAPI application; its ``openapi`` method is replaced, as FastAPI's
    documentation suggests for extending the document."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    described: dict[str, Any] | None = None

    def openapi() -> dict[str, Any]:
        nonlocal described
        if described is None:
            described = describe(copy.deepcopy(generate()))
        return described

    app.openapi = openapi
