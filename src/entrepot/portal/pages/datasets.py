"""A provider's datasets: list them, create one, edit one, with a schema editor that
checks the draft as it is typed.

The check is the API's: the draft is read as strict JSON (``jsonbody``) and compiled by
:class:`~entrepot.schema.record_schema.RecordSchema`, with the primary key checked as
creating the dataset would check it; its errors carry the API's paths and words. The
preview shows the fields as the catalogue will, and sample records checked against
the draft: an example made from the schema for a new dataset, the first stored
records for an existing one (those the new schema would refuse are marked).

The form works without JavaScript (a "Check" button posts it to the check route,
which answers the whole form with the report); htmx posts the same form as one types
and swaps in only the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

from entrepot import jsonbody
from entrepot.access.resolver import AccessResolver
from entrepot.catalog import service as catalog
from entrepot.catalog.models import DatasetCreate, DatasetPatch
from entrepot.portal import samples, views
from entrepot.portal.forms import Form
from entrepot.portal.web import (
    Ctx,
    field_errors,
    note_denial,
    page,
    redirect,
    validating,
)
from entrepot.problems import Forbidden, NotFound, Problem, Unprocessable
from entrepot.records.service import RecordService
from entrepot.schema.record_schema import RecordSchema
from entrepot.store.work import reads, unit_of_work

LISTED = 100
STORED_SAMPLES = 5
VISIBILITIES = ("restricted", "public", "open")
STARTER = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "description": "The record's key"},
        "name": {"type": "string"},
    },
}


@dataclass
class SampleRow:
    cells: list[str]
    errors: list[dict[str, str]]


@dataclass
class Check:
    """What the draft schema is worth: the API's verdict, the field table, samples."""

    ok: bool = False
    message: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)
    fields: list[views.FieldRow] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    samples: list[SampleRow] = field(default_factory=list)
    generated: bool = True


def _schema_problem(text: str) -> Any:
    """The draft as a JSON document, or the problem the API would answer for it."""
    if not text.strip():
        raise Unprocessable(
            "Write the JSON Schema of one record.",
            errors=[{"path": "/schema", "message": "required"}],
        )
    try:
        return jsonbody.parse_body(text)
    except Problem as problem:
        errors = [
            {"path": "/schema" + str(e.get("path", "")), "message": str(e.get("message", ""))}
            for e in problem.errors or []
        ]
        raise Unprocessable(f"The schema is not JSON: {problem.detail}", errors=errors) from None


def _compiled(text: str, primary_key: str | None) -> tuple[Any, RecordSchema]:
    document = _schema_problem(text)
    schema = RecordSchema.compile(document).keyed_by(primary_key)
    if primary_key:
        schema.check_key_field(primary_key)
    return document, schema


def check_draft(text: str, primary_key: str | None, stored: list[dict[str, Any]] | None) -> Check:
    """The check of a draft, never raising: a problem is the check's verdict."""
    try:
        document, schema = _compiled(text, primary_key)
    except Problem as problem:
        return Check(message=problem.detail, errors=list(problem.errors or []))
    fields = views.field_rows(document, primary_key)
    columns = [f.name for f in fields]
    records = stored if stored is not None else [samples.example(document)]
    rows = [
        SampleRow([views.cell(r.get(c)) if isinstance(r, dict) else "" for c in columns], errs)
        for r in records
        for errs in [schema.errors(r)]
    ]
    return Check(True, "", [], fields, columns, rows, generated=stored is None)


def _tags(raw: str) -> list[str]:
    return [t.strip() for t in raw.split(",") if t.strip()]


def _values(form: Form) -> dict[str, Any]:
    return {
        "name": form.get("name").strip(),
        "title": form.get("title"),
        "description": form.get("description"),
        "visibility": form.get("visibility") or "restricted",
        "primary_key": form.get("primary_key").strip(),
        "tags": form.get("tags"),
        "schema": form.get("schema"),
        "auto_approve": form.flag("auto_approve"),
    }


def _form_page(
    ctx: Ctx,
    *,
    ds: dict[str, Any] | None,
    values: dict[str, Any],
    check: Check | None,
    errors: dict[str, str],
    message: str,
    status: int = 200,
) -> Response:
    return ctx.render(
        "dataset_form.html",
        status=status,
        ds=ds,
        values=values,
        check=check,
        errors=errors,
        message=message,
        visibilities=VISIBILITIES,
    )


def _require_manager(ctx: Ctx) -> None:
    if not ctx.visitor.manages(ctx.visitor.org):
        raise Forbidden("Datasets are created by an organisation's owners and admins.", denial=True)


@page()
async def datasets_list(ctx: Ctx) -> Response:
    org = ctx.visitor.org
    listed: list[dict[str, Any]] = []
    if org is not None and ctx.visitor.manages(org):
        async with reads(ctx.pool) as reading:
            found = await catalog.list_datasets(
                reading, ctx.principal, q=None, org=org.name, tag=None, cursor=None, limit=LISTED
            )
        listed = found["data"]
    return ctx.render("datasets.html", datasets=listed)


@page()
async def new_form(ctx: Ctx) -> Response:
    _require_manager(ctx)
    values = _values(Form({}))
    values["schema"] = orjson.dumps(STARTER, option=orjson.OPT_INDENT_2).decode()
    values["primary_key"] = "id"
    check = check_draft(values["schema"], "id", None)
    return _form_page(ctx, ds=None, values=values, check=check, errors={}, message="")


@page()
async def check_new(ctx: Ctx) -> Response:
    """The draft checked (htmx swaps in the report; without JavaScript, the whole form)."""
    _require_manager(ctx)
    values = _values(ctx.form)
    check = check_draft(values["schema"], values["primary_key"] or None, None)
    return _form_page(ctx, ds=None, values=values, check=check, errors={}, message="")


@page()
async def create(ctx: Ctx) -> Response:
    org = ctx.visitor.org
    values = _values(ctx.form)
    try:
        _require_manager(ctx)
        document, _ = _compiled(values["schema"], values["primary_key"] or None)
        with validating():
            body = DatasetCreate.model_validate(
                {
                    "name": values["name"],
                    "org": org.name if org else "",
                    "title": values["title"],
                    "description": values["description"],
                    "schema": document,
                    "primary_key": values["primary_key"] or None,
                    "visibility": values["visibility"],
                    "tags": _tags(values["tags"]),
                    "auto_approve": values["auto_approve"],
                }
            )
        async with unit_of_work(ctx.pool) as work:
            made = await catalog.create_dataset(work, ctx.principal, body)
    except Problem as problem:
        if problem.status == 403:
            raise
        await note_denial(ctx, problem)
        check = check_draft(values["schema"], values["primary_key"] or None, None)
        return _form_page(
            ctx,
            ds=None,
            values=values,
            check=check,
            errors=field_errors(problem),
            message=problem.detail,
            status=problem.status,
        )
    return redirect(f"/portal/datasets/{made['name']}/import?created=1")


async def managed_dataset(ctx: Ctx, name: str) -> dict[str, Any]:
    """The dataset, as its owner sees it; 404 for one the visitor cannot see, 403 for
    one they see but do not manage (the update service would refuse it the same way)."""
    if not views.is_slug(name):
        raise NotFound(f"Dataset {name!r} does not exist or is not visible to you.")
    access: AccessResolver = ctx.part(AccessResolver)
    async with reads(ctx.pool) as reading:
        ds = await catalog.get_dataset(reading, access, ctx.principal, name)
    manages = ctx.visitor.is_admin or any(
        o.name == ds["org"] and o.role in ("owner", "admin") for o in ctx.visitor.orgs
    )
    if not manages:
        raise Forbidden(
            f"Dataset {name!r} is managed by the owners and admins of {ds['org']}.", denial=True
        )
    return ds


async def _stored(ctx: Ctx, name: str) -> list[dict[str, Any]]:
    records: RecordService = ctx.part(RecordService)
    async with reads(ctx.pool) as reading:
        found = await records.list(reading, ctx.principal, name, [("limit", str(STORED_SAMPLES))])
    return [orjson.loads(item).get("data") or {} for item in found.items]


def _edit_values(ds: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": ds["name"],
        "title": ds["title"],
        "description": ds["description"],
        "visibility": ds["visibility"],
        "primary_key": ds["primary_key"] or "",
        "tags": ", ".join(ds["tags"]),
        "schema": orjson.dumps(ds["schema"], option=orjson.OPT_INDENT_2).decode(),
        "auto_approve": ds["auto_approve"],
    }


@page()
async def edit_form(ctx: Ctx) -> Response:
    ds = await managed_dataset(ctx, ctx.request.path_params["name"])
    values = _edit_values(ds)
    check = check_draft(values["schema"], ds["primary_key"], await _stored(ctx, ds["name"]))
    return _form_page(ctx, ds=ds, values=values, check=check, errors={}, message="")


def _edited(ctx: Ctx, ds: dict[str, Any]) -> dict[str, Any]:
    values = _values(ctx.form)
    values["name"], values["primary_key"] = ds["name"], ds["primary_key"] or ""
    return values


@page()
async def check_edit(ctx: Ctx) -> Response:
    ds = await managed_dataset(ctx, ctx.request.path_params["name"])
    values = _edited(ctx, ds)
    check = check_draft(values["schema"], ds["primary_key"], await _stored(ctx, ds["name"]))
    return _form_page(ctx, ds=ds, values=values, check=check, errors={}, message="")


@page()
async def update(ctx: Ctx) -> Response:
    ds = await managed_dataset(ctx, ctx.request.path_params["name"])
    values = _edited(ctx, ds)
    access: AccessResolver = ctx.part(AccessResolver)
    try:
        document, _ = _compiled(values["schema"], ds["primary_key"])
        with validating():
            patch = DatasetPatch.model_validate(
                {
                    "title": values["title"],
                    "description": values["description"],
                    "schema": document,
                    "visibility": values["visibility"],
                    "tags": _tags(values["tags"]),
                    "auto_approve": values["auto_approve"],
                }
            )
        async with reads(ctx.pool) as reading:
            await catalog.update_dataset(reading, access, ctx.principal, ds["name"], patch)
    except Problem as problem:
        if problem.status in (403, 404):
            raise
        await note_denial(ctx, problem)
        check = check_draft(values["schema"], ds["primary_key"], await _stored(ctx, ds["name"]))
        return _form_page(
            ctx,
            ds=ds,
            values=values,
            check=check,
            errors=field_errors(problem),
            message=problem.detail,
            status=problem.status,
        )
    return redirect(f"/portal/catalog/{ds['name']}")
