"""Importing a CSV or NDJSON file into a dataset, with a report of every failed line.

The upload streams (portal/uploads.py) into the API's own bulk import service
(``records.bulk_endpoints.import_service``): the same parsing, validation, batches,
transaction, feed entries and audit row as ``POST /v1/datasets/{name}/import``, and
the same report. Line numbers are the file's own lines, counted from 1.

Progress: the service reads the file as the browser sends it, so the browser's upload
progress (drawn by static/imports.js) is how far the import has read; without
JavaScript the browser shows its own and the report page comes when the import ends.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from entrepot.components import Components
from entrepot.parts import components
from entrepot.portal.pages.datasets import managed_dataset
from entrepot.portal.web import Ctx, note_denial, page
from entrepot.problems import Problem, Unprocessable
from entrepot.records.bulk_endpoints import import_service
from entrepot.records.bulk_import import Format, ImportOptions

FORMATS = ("auto", "csv", "ndjson")
SUFFIXES: dict[str, Format] = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}


def _format(chosen: str, filename: str, content_type: str) -> Format:
    """The file's format: the one chosen, else its name's suffix, else its type."""
    if chosen in ("csv", "ndjson"):
        return "csv" if chosen == "csv" else "ndjson"
    lower = filename.lower()
    for suffix, found in SUFFIXES.items():
        if lower.endswith(suffix):
            return found
    if content_type.split(";", 1)[0].strip().lower() == "text/csv":
        return "csv"
    raise Unprocessable(
        "Say whether the file is CSV or NDJSON: its name does not tell.",
        errors=[{"path": "/format", "message": "choose CSV or NDJSON"}],
    )


def _options(ctx: Ctx, fmt: Format) -> ImportOptions:
    mode, on_error = ctx.form.get("mode"), ctx.form.get("on_error")
    return ImportOptions(
        fmt,
        mode="upsert" if mode == "upsert" else "insert",
        on_error="skip" if on_error == "skip" else "abort",
    )


def _form_values(ctx: Ctx) -> dict[str, str]:
    return {
        "format": ctx.form.get("format") if ctx.form.get("format") in FORMATS else "auto",
        "mode": "upsert" if ctx.form.get("mode") == "upsert" else "insert",
        "on_error": "skip" if ctx.form.get("on_error") == "skip" else "abort",
    }


def _rows(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's failures, one row per error: its line, the field's path, why."""
    rows = []
    for failure in errors:
        for error in failure.get("errors") or [{"path": "", "message": ""}]:
            rows.append(
                {
                    "line": failure.get("line"),
                    "path": str(error.get("path", "")),
                    "message": str(error.get("message", "")),
                }
            )
    return rows


@page()
async def import_form(ctx: Ctx) -> Response:
    ds = await managed_dataset(ctx, ctx.request.path_params["name"])
    created = ctx.request.query_params.get("created") == "1"
    return ctx.render(
        "import_form.html",
        ds=ds,
        values=_form_values(ctx),
        errors={},
        message="",
        created=created,
        formats=FORMATS,
    )


@page(upload=True)
async def run_import(ctx: Ctx) -> Response:
    ds = await managed_dataset(ctx, ctx.request.path_params["name"])
    found: Components = components(ctx.request)
    try:
        upload = ctx.upload
        if upload is None:
            raise Unprocessable(
                "Choose a file to import.", errors=[{"path": "/file", "message": "required"}]
            )
        fmt = _format(ctx.form.get("format"), upload.filename, upload.content_type)
        report = await import_service(found).run(
            ctx.principal, ds["name"], upload.chunks, _options(ctx, fmt)
        )
    except Problem as problem:
        await note_denial(ctx, problem)
        if problem.status == 422 and "failed" in problem.extra:
            return ctx.render(
                "import_report.html",
                status=422,
                ds=ds,
                committed=False,
                message=problem.detail,
                inserted=0,
                updated=0,
                failed=problem.extra["failed"],
                rows=_rows(problem.errors or []),
            )
        errors = {
            str(e.get("path", "")).lstrip("/").split("/", 1)[0]: str(e.get("message", ""))
            for e in problem.errors or []
        }
        return ctx.render(
            "import_form.html",
            status=problem.status,
            ds=ds,
            values=_form_values(ctx),
            errors=errors,
            message=problem.detail,
            created=False,
            formats=FORMATS,
        )
    body = report.body()
    return ctx.render(
        "import_report.html",
        ds=ds,
        committed=True,
        message="",
        inserted=body["inserted"],
        updated=body["updated"],
        failed=body["failed"],
        rows=_rows(body["errors"]),
    )
