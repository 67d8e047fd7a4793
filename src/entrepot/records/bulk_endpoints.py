"""HTTP routes for bulk import and export.

Query parameters are parsed by hand, not declared to FastAPI, so that an
unknown or repeated parameter is a 400 rather than silently ignored; the
OpenAPI document still describes them through ``openapi_extra``.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.datastructures import QueryParams

from entrepot.access.resolver import AccessResolver
from entrepot.auth.authenticate import CurrentPrincipal, CurrentReader
from entrepot.changes.incarnation import HEADER as INCARNATION_HEADER
from entrepot.changes.waker import FeedWaker
from entrepot.components import Components
from entrepot.datasets.registry import DatasetRegistry
from entrepot.http import StrictJsonRoute, media_type
from entrepot.parts import components
from entrepot.problems import BadRequest, UnsupportedMediaType
from entrepot.records import export
from entrepot.records.bulk_import import BulkImportService, Format, ImportOptions
from entrepot.records.csv_codec import CsvStyle
from entrepot.records.models import ImportReport
from entrepot.settings import Settings
from entrepot.store.bulk_slots import BulkSlots
from entrepot.streaming import GuardedStreamingResponse, body_chunks, bulk_floor

router = APIRouter(prefix="/v1/datasets/{ds}", tags=["bulk"], route_class=StrictJsonRoute)

NDJSON = "application/x-ndjson"
CSV = "text/csv"
FORMATS: dict[str, Format] = {NDJSON: "ndjson", CSV: "csv"}
EXPORT_FORMATS: dict[str, export.ExportFormat] = {
    "ndjson": "ndjson",
    "csv": "csv",
    "parquet": "parquet",
    "arrow": "arrow",
}
IMPORT_PARAMETERS: dict[str, tuple[str, ...]] = {
    "mode": ("insert", "upsert"),
    "on_error": ("abort", "skip"),
}
EXPORT_PARAMETERS: dict[str, tuple[str, ...]] = {
    "format": ("ndjson", "csv", "parquet", "arrow"),
    "envelope": ("false", "true"),
    "csv": ("exact", "spreadsheet"),
}
EXPORT_DESCRIPTIONS = {
    "format": "ndjson and csv import back unchanged. parquet (a Parquet file, "
    f"{export.MEDIA_TYPES['parquet']}) and arrow (an Arrow IPC stream, "
    f"{export.MEDIA_TYPES['arrow']}) are typed columns for analytics: _id, _version, then "
    "one column a property, typed from the schema (docs/bulk.md, Parquet and Arrow).",
    "envelope": 'true: NDJSON lines are {"id", "version", "data"} (for mirrors such as '
    "`entrepot sync`). NDJSON only.",
    "csv": "exact: the file imports back unchanged. spreadsheet: for people opening the file "
    "in spreadsheet software; a string cell starting with =, +, -, @, tab or carriage return "
    "gets a leading ' so it is shown as text, not run as a formula (the file then no longer "
    "imports back unchanged). CSV only.",
}


def _enum_parameters(
    allowed: dict[str, tuple[str, ...]], descriptions: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    described = descriptions or {}
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": list(values), "default": values[0]},
            **({"description": described[name]} if name in described else {}),
        }
        for name, values in allowed.items()
    ]


IMPORT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Streamed, never held whole. Line numbers in errors are physical "
        "lines of this body, counted from 1.",
        "content": {
            NDJSON: {
                "schema": {
                    "type": "string",
                    "description": "One JSON record a line; blank lines are ignored.",
                },
                "example": '{"sku": "w-1", "name": "Widget", "price": 9.5}\n',
            },
            CSV: {
                "schema": {
                    "type": "string",
                    "description": "RFC 4180 with a header row of schema property names; "
                    "cells are read by the property's type; an empty cell is an absent field.",
                },
                "example": "sku,name,price\r\nw-1,Widget,9.5\r\n",
            },
        },
    },
    "parameters": _enum_parameters(IMPORT_PARAMETERS),
}


def _options(params: QueryParams, allowed: dict[str, tuple[str, ...]]) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for name, value in params.multi_items():
        if name not in allowed:
            raise BadRequest(f"Unknown query parameter {name!r}.")
        if name in chosen:
            raise BadRequest(f"Query parameter {name!r} is given more than once.")
        if value not in allowed[name]:
            raise BadRequest(f"{name} must be one of {', '.join(allowed[name])}.")
        chosen[name] = value
    return {name: chosen.get(name, values[0]) for name, values in allowed.items()}


def _body_format(request: Request) -> Format:
    kind = media_type(request)
    fmt = FORMATS.get(kind)
    charset = request.headers.get("content-type", "").lower().partition("charset=")[2]
    charset = charset.split(";", 1)[0].strip().strip('"')
    if fmt is None or charset not in ("", "utf-8", "utf8"):
        raise UnsupportedMediaType(
            f"Send the body as {NDJSON} or {CSV}, in UTF-8 (got {kind or 'no Content-Type'})."
        )
    return fmt


def import_service(found: Components) -> BulkImportService:
    """The import service over this process's parts (the portal's uploads use it too)."""
    settings: Settings = found.get(Settings)
    return BulkImportService(
        found.get(BulkSlots),
        found.get(DatasetRegistry),
        found.get(AccessResolver),
        batch_size=settings.import_batch_size,
        max_record_bytes=settings.max_body_bytes,
        changed=found.get(FeedWaker).changed,
    )


@router.post(
    "/import",
    summary="Import records in bulk (NDJSON or CSV)",
    openapi_extra=IMPORT_OPENAPI,
    responses={
        200: {"description": "What was written, and the lines that failed.", "model": ImportReport}
    },
)
async def import_records(ds: str, request: Request, principal: CurrentPrincipal) -> Response:
    fmt = _body_format(request)
    chosen = _options(request.query_params, IMPORT_PARAMETERS)
    options = ImportOptions(
        fmt,
        mode="upsert" if chosen["mode"] == "upsert" else "insert",
        on_error="skip" if chosen["on_error"] == "skip" else "abort",
    )
    found = components(request)
    settings: Settings = found.get(Settings)
    service = import_service(found)
    # A client leaving mid-body raises ClientDisconnect: rolled back, and EdgeMiddleware
    # records it as a client abort (499), as for every other route. One too slow gets 408.
    body = body_chunks(request.receive, bulk_floor(settings))
    report = await service.run(principal, ds, body, options)
    return Response(orjson.dumps(report.body()), media_type="application/json")


@router.get(
    "/export",
    summary="Export every record (NDJSON, CSV, Parquet or Arrow), streamed",
    openapi_extra={"parameters": _enum_parameters(EXPORT_PARAMETERS, EXPORT_DESCRIPTIONS)},
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                NDJSON: {"schema": {"type": "string"}},
                CSV: {"schema": {"type": "string"}},
                export.MEDIA_TYPES["parquet"]: {"schema": {"type": "string", "format": "binary"}},
                export.MEDIA_TYPES["arrow"]: {"schema": {"type": "string", "format": "binary"}},
            }
        }
    },
)
async def export_records(ds: str, request: Request, principal: CurrentReader) -> Response:
    chosen = _options(request.query_params, EXPORT_PARAMETERS)
    fmt = EXPORT_FORMATS[chosen["format"]]
    envelope = chosen["envelope"] == "true"
    if envelope and fmt != "ndjson":
        raise BadRequest("envelope=true is only available with format=ndjson.")
    csv_style: CsvStyle = "spreadsheet" if chosen["csv"] == "spreadsheet" else "exact"
    if csv_style == "spreadsheet" and fmt != "csv":
        raise BadRequest("csv=spreadsheet is only available with format=csv.")
    found = components(request)
    started = await export.start(
        found.get(BulkSlots), found.get(AccessResolver), principal, ds, fmt, envelope, csv_style
    )
    return GuardedStreamingResponse(
        started.chunks,
        bulk_floor(found.get(Settings)),
        media_type=started.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{started.filename}"',
            "X-Entrepot-Seq": str(started.seq),
            INCARNATION_HEADER: started.incarnation,
        },
    )
