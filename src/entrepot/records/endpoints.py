"""HTTP routes for records. Bodies are read raw and responses are bytes: no
response-model validation on the hot paths (see DESIGN.md measurements)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.http import require_json
from entrepot.records import idempotency, preconditions
from entrepot.records.service import Outcome, RecordService, WriteRequest

router = APIRouter(prefix="/v1/datasets/{ds}/records", tags=["records"])

JSON = "application/json"
RECORD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": {"type": "object", "additionalProperties": True}}},
    }
}
ENVELOPE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "version": {"type": "integer"},
        "data": {"type": "object"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


IF_MATCH = _header("If-Match", "Apply only if the record's ETag matches (412 otherwise).")
IF_NONE_MATCH = _header("If-None-Match", "'*' to create only if absent; on GET, 304 if unchanged.")
IDEMPOTENCY_KEY = _header("Idempotency-Key", "Replays the first response for a retried request.")

LIST_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "filter",
        "in": "query",
        "required": False,
        "style": "deepObject",
        "explode": True,
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
        "description": "filter[field]=v or filter[field][op]=v, op in eq ne gt gte lt lte in like.",
    },
    {
        "name": "sort",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Comma-separated fields, '-' for descending.",
    },
    {"name": "fields", "in": "query", "required": False, "schema": {"type": "string"}},
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
]


def _service(request: Request) -> RecordService:
    service: RecordService = request.app.state.records
    return service


def _respond(outcome: Outcome) -> Response:
    if outcome.status in (204, 304):
        return Response(status_code=outcome.status, headers=outcome.headers)
    return Response(outcome.body, outcome.status, outcome.headers, media_type=JSON)


async def _write_request(request: Request, body: bytes) -> WriteRequest:
    key = request.headers.get("idempotency-key")
    if key is not None:
        idempotency.check_key(key)
    fingerprint = idempotency.request_fingerprint(
        request.method,
        request.url.path,
        body,
        request.headers.get("if-match"),
        request.headers.get("if-none-match"),
    )
    return WriteRequest(key, fingerprint)


async def _json_body(request: Request) -> bytes:
    require_json(request)
    return await request.body()


@router.get(
    "",
    summary="List records",
    openapi_extra={"parameters": LIST_PARAMETERS},
    responses={200: {"content": {JSON: {"schema": {"type": "object"}}}}},
)
async def list_records(ds: str, request: Request, principal: CurrentPrincipal) -> Response:
    outcome = await _service(request).list(principal, ds, request.query_params.multi_items())
    return _respond(outcome)


@router.post(
    "",
    status_code=201,
    summary="Create a record",
    openapi_extra={**RECORD_BODY, "parameters": [IDEMPOTENCY_KEY]},
    responses={201: {"content": {JSON: {"schema": ENVELOPE}}}},
)
async def create_record(ds: str, request: Request, principal: CurrentPrincipal) -> Response:
    body = await _json_body(request)
    outcome = await _service(request).create(
        principal, ds, body, await _write_request(request, body)
    )
    return _respond(outcome)


@router.get(
    "/{record_id}",
    summary="Get a record",
    openapi_extra={"parameters": [IF_NONE_MATCH]},
    responses={
        200: {"content": {JSON: {"schema": ENVELOPE}}},
        304: {"description": "Not modified"},
    },
)
async def get_record(
    ds: str, record_id: str, request: Request, principal: CurrentPrincipal
) -> Response:
    if_none_match = preconditions.parse(request.headers.get("if-none-match"))
    return _respond(await _service(request).get(principal, ds, record_id, if_none_match))


@router.put(
    "/{record_id}",
    summary="Replace (or create) a record",
    openapi_extra={**RECORD_BODY, "parameters": [IF_MATCH, IF_NONE_MATCH, IDEMPOTENCY_KEY]},
    responses={
        200: {"content": {JSON: {"schema": ENVELOPE}}},
        201: {"description": "Created", "content": {JSON: {"schema": ENVELOPE}}},
    },
)
async def replace_record(
    ds: str, record_id: str, request: Request, principal: CurrentPrincipal
) -> Response:
    body = await _json_body(request)
    outcome = await _service(request).replace(
        principal,
        ds,
        record_id,
        body,
        preconditions.parse(request.headers.get("if-match")),
        preconditions.parse(request.headers.get("if-none-match")),
        await _write_request(request, body),
    )
    return _respond(outcome)


@router.patch(
    "/{record_id}",
    summary="Merge-patch a record (RFC 7396)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/merge-patch+json": {"schema": {"type": "object"}},
                JSON: {"schema": {"type": "object"}},
            },
        },
        "parameters": [IF_MATCH, IDEMPOTENCY_KEY],
    },
    responses={200: {"content": {JSON: {"schema": ENVELOPE}}}},
)
async def patch_record(
    ds: str, record_id: str, request: Request, principal: CurrentPrincipal
) -> Response:
    body = await _json_body(request)
    outcome = await _service(request).patch(
        principal,
        ds,
        record_id,
        body,
        preconditions.parse(request.headers.get("if-match")),
        await _write_request(request, body),
    )
    return _respond(outcome)


@router.delete(
    "/{record_id}",
    status_code=204,
    summary="Delete a record",
    openapi_extra={"parameters": [IF_MATCH, IDEMPOTENCY_KEY]},
)
async def delete_record(
    ds: str, record_id: str, request: Request, principal: CurrentPrincipal
) -> Response:
    outcome = await _service(request).delete(
        principal,
        ds,
        record_id,
        preconditions.parse(request.headers.get("if-match")),
        await _write_request(request, b""),
    )
    return _respond(outcome)
