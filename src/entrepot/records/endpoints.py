"""HTTP routes for records. Bodies are read raw and responses are bytes: no
response-model validation on the hot paths (see DESIGN.md measurements)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response

from entrepot.auth.authenticate import CurrentPrincipal, CurrentReader
from entrepot.headers import first_header
from entrepot.http import JSONBytes, StrictJsonRoute, require_json
from entrepot.parts import part
from entrepot.principal import Principal
from entrepot.records import idempotency, preconditions
from entrepot.records.models import Record, RecordPage
from entrepot.records.service import RecordService, Written
from entrepot.store.work import UnitOfWork
from entrepot.work_deps import LazyWork, PlannedReading, Reading

router = APIRouter(
    prefix="/v1/datasets/{ds}/records", tags=["records"], route_class=StrictJsonRoute
)

JSON = "application/json"
RECORD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": {"type": "object", "additionalProperties": True}}},
    }
}
ETAG = {
    "ETag": {
        "description": 'The record\'s version, `"<version>"` (weak, `W/"..."`, for a '
        "field-narrowed grant): send it as If-Match or If-None-Match.",
        "schema": {"type": "string"},
    }
}
LOCATION = {"Location": {"description": "The created record's URL.", "schema": {"type": "string"}}}
WRITTEN = {"description": "The record as stored.", "model": Record, "headers": ETAG}
CREATED = {"description": "Created.", "model": Record, "headers": {**ETAG, **LOCATION}}


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


Records = Annotated[RecordService, Depends(part(RecordService))]


def _written(written: Written, location: bool = True) -> Response:
    """A write's answer: 201 with Location when it created the record, 200, or 204."""
    found = written.record
    if found is None:
        return Response(status_code=204)
    headers = {"ETag": found.etag}
    if written.created and location:
        headers["Location"] = (
            f"/v1/datasets/{written.dataset}/records/{quote(found.record_id, safe='')}"
        )
    return Response(found.body(), 201 if written.created else 200, headers, media_type=JSON)


async def _idempotent(
    work: UnitOfWork,
    request: Request,
    principal: Principal,
    body: bytes,
    write: Callable[[], Awaitable[Response]],
) -> Response:
    """Run ``write`` once per Idempotency-Key: a repeat replays the first answer.

    The key is claimed and the answer stored in the write's own transaction,
    so both commit with the change or neither does.
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        return await write()
    idempotency.check_key(key)
    await work.begin_transaction()  # the claim, the write and the stored answer: one commit
    fingerprint = idempotency.request_fingerprint(
        request.method,
        request.url.path,
        body,
        request.headers.get("if-match"),
        request.headers.get("if-none-match"),
    )
    stored = await idempotency.claim(work.conn, principal.subject, key, fingerprint)
    if stored is not None:
        headers = {**stored.headers, "Idempotent-Replayed": "true"}
        if stored.status == 204:
            return Response(status_code=204, headers=headers)
        return Response(stored.body, stored.status, headers, media_type=JSON)
    response = await write()
    kept = {k: v for k, v in response.headers.items() if k.lower() in ("etag", "location")}
    answer = idempotency.StoredResponse(response.status_code, bytes(response.body), kept)
    await idempotency.remember(work.conn, principal.subject, key, fingerprint, answer)
    return response


async def _json_body(request: Request) -> bytes:
    require_json(request)
    return await request.body()


@router.get(
    "",
    summary="List records",
    openapi_extra={"parameters": LIST_PARAMETERS},
    responses={200: {"description": "A page of records.", "model": RecordPage}},
)
async def list_records(
    ds: str,
    request: Request,
    principal: CurrentReader,
    records: Records,
    reading: PlannedReading,
) -> Response:
    page = await records.list(reading, principal, ds, request.query_params.multi_items())
    return JSONBytes(page.body())


@router.post(
    "",
    status_code=201,
    summary="Create a record",
    openapi_extra={**RECORD_BODY, "parameters": [IDEMPOTENCY_KEY]},
    responses={201: CREATED},
)
async def create_record(
    ds: str, request: Request, principal: CurrentPrincipal, records: Records, work: LazyWork
) -> Response:
    body = await _json_body(request)

    async def write() -> Response:
        return _written(await records.create(work, principal, ds, body))

    return await _idempotent(work, request, principal, body, write)


@router.get(
    "/{record_id}",
    summary="Get a record",
    openapi_extra={"parameters": [IF_NONE_MATCH]},
    responses={
        200: {"description": "The record.", "model": Record, "headers": ETAG},
        304: {"description": "Not modified: If-None-Match matched the ETag.", "headers": ETAG},
    },
)
async def get_record(
    ds: str,
    record_id: str,
    request: Request,
    principal: CurrentReader,
    records: Records,
    reading: Reading,
) -> Response:
    if_none_match = preconditions.parse(first_header(request.scope, b"if-none-match"))
    found = await records.get(reading, principal, ds, record_id)
    if if_none_match is not None and if_none_match.matches_weak_tag(found.etag):
        return Response(status_code=304, headers={"ETag": found.etag})
    return JSONBytes(found.body(), 200, {"ETag": found.etag})


@router.put(
    "/{record_id}",
    summary="Replace (or create) a record",
    openapi_extra={**RECORD_BODY, "parameters": [IF_MATCH, IF_NONE_MATCH, IDEMPOTENCY_KEY]},
    responses={200: WRITTEN, 201: CREATED},
)
async def replace_record(
    ds: str,
    record_id: str,
    request: Request,
    principal: CurrentPrincipal,
    records: Records,
    work: LazyWork,
) -> Response:
    body = await _json_body(request)
    if_match = preconditions.parse(request.headers.get("if-match"))
    if_none_match = preconditions.parse(request.headers.get("if-none-match"))

    async def write() -> Response:
        return _written(
            await records.replace(work, principal, ds, record_id, body, if_match, if_none_match)
        )

    return await _idempotent(work, request, principal, body, write)


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
    responses={200: WRITTEN},
)
async def patch_record(
    ds: str,
    record_id: str,
    request: Request,
    principal: CurrentPrincipal,
    records: Records,
    work: LazyWork,
) -> Response:
    body = await _json_body(request)
    if_match = preconditions.parse(request.headers.get("if-match"))

    async def write() -> Response:
        written = await records.patch(work, principal, ds, record_id, body, if_match)
        return _written(written)

    return await _idempotent(work, request, principal, body, write)


@router.delete(
    "/{record_id}",
    status_code=204,
    summary="Delete a record",
    openapi_extra={"parameters": [IF_MATCH, IDEMPOTENCY_KEY]},
    responses={204: {"description": "Deleted."}},
)
async def delete_record(
    ds: str,
    record_id: str,
    request: Request,
    principal: CurrentPrincipal,
    records: Records,
    work: LazyWork,
) -> Response:
    if_match = preconditions.parse(request.headers.get("if-match"))

    async def write() -> Response:
        return _written(await records.delete(work, principal, ds, record_id, if_match))

    return await _idempotent(work, request, principal, b"", write)
