"""Conditions as SQL over a record's jsonb document, written exactly as the
per-dataset expression indexes are, so an indexed condition is an index scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from entrepot import jsonbody
from entrepot.filters.conditions import RANGE_SQL, Condition, is_id
from entrepot.schema.record_schema import RecordSchema
from entrepot.store.sql import field_expr, id_expr, literal


def expr(field: str, schema: RecordSchema, column: str = "data") -> str:
    return id_expr(schema.integer_ids) if is_id(field, schema) else field_expr(field, column)


def id_cast(schema: RecordSchema) -> str:
    """How a parameter compared with :func:`expr` of the id is cast."""
    return "::numeric" if schema.integer_ids else ""


def json_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    return "number"


@dataclass
class Args:
    values: list[Any]

    def add(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{cast}"


def condition_sql(cond: Condition, schema: RecordSchema, args: Args, column: str = "data") -> str:
    """``cond`` as SQL over the jsonb document in ``column`` (and the ``id`` column)."""
    on_id = is_id(cond.field, schema)
    target = expr(cond.field, schema, column)
    cast = id_cast(schema) if on_id else "::jsonb"
    as_param = (lambda v: v) if on_id else jsonbody.dumps
    if cond.op == "eq":
        return f"{target} = {args.add(as_param(cond.value), cast)}"
    if cond.op == "ne":
        return f"{target} <> {args.add(as_param(cond.value), cast)}"
    if cond.op == "in":
        array_cast = f"{cast or '::text'}[]" if on_id else "::jsonb[]"
        return f"{target} = ANY({args.add([as_param(v) for v in cond.value], array_cast)})"
    if cond.op == "like":
        text_expr = "id" if on_id else f"({column} ->> {literal(cond.field)})"
        return f"{text_expr} LIKE {args.add(cond.value)}"
    sql = f"{target} {RANGE_SQL[cond.op]} {args.add(as_param(cond.value), cast)}"
    if not on_id:
        sql += f" AND jsonb_typeof({target}) = '{json_type(cond.value)}'"
    return sql
