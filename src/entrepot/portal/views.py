"""What pages show, computed from what the services answer: a schema as rows of a
field table, records as rows of cells, the apps a person may act for. No store access
and no decisions of their own: a page shows only what a service gave it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from entrepot.fields import SLUG as FIELDS_SLUG

SLUG = re.compile(FIELDS_SLUG)


@dataclass(frozen=True, slots=True)
class FieldRow:
    name: str
    type: str
    required: bool
    key: bool
    description: str
    constraints: str


def _type_of(spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array" and isinstance(spec.get("items"), dict):
        return f"array of {_type_of(spec['items'])}"
    if kind:
        return str(kind)
    if "enum" in spec:
        return "one of the listed values"
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    return "any"


CONSTRAINTS = (
    ("format", "format {}"),
    ("minimum", "at least {}"),
    ("maximum", "at most {}"),
    ("exclusiveMinimum", "more than {}"),
    ("exclusiveMaximum", "less than {}"),
    ("minLength", "{} characters or more"),
    ("maxLength", "{} characters at most"),
    ("pattern", "matches {}"),
)


def field_rows(schema: dict[str, Any], primary_key: str | None) -> list[FieldRow]:
    """A record schema's top-level properties, in their declared order."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    required = set(schema.get("required") or [])
    rows = []
    for name, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        notes = [text.format(spec[k]) for k, text in CONSTRAINTS if k in spec]
        if isinstance(spec.get("enum"), list):
            notes.append("one of " + ", ".join(orjson.dumps(v).decode() for v in spec["enum"]))
        rows.append(
            FieldRow(
                name=str(name),
                type=_type_of(spec),
                required=name in required,
                key=name == primary_key,
                description=str(spec.get("description") or spec.get("title") or ""),
                constraints="; ".join(notes),
            )
        )
    return rows


def cell(value: Any) -> str:
    """One value of a record as a table cell shows it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def sample_rows(items: list[bytes], columns: list[str]) -> list[list[str]]:
    """Records (the API's envelopes) as rows of cells under ``columns``: only the
    fields the caller's view holds are in a record, so a hidden field is an empty cell
    here only if it were a column, and it is never one."""
    rows = []
    for item in items:
        data = orjson.loads(item).get("data") or {}
        rows.append([cell(data.get(column)) for column in columns])
    return rows


def is_slug(value: str) -> bool:
    return bool(SLUG.match(value))
