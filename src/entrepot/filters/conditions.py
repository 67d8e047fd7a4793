"""Conditions on a record's fields, as list filters and grant row filters state them.

A field is a top-level schema property or ``id``; values are typed by the
dataset schema (``"50"`` filters an integer field as 50). Raises BadRequest
with a JSON Pointer or query-parameter path for anything invalid.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from entrepot import jsonbody
from entrepot.problems import BadRequest
from entrepot.schema.record_schema import RecordSchema

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "like")
RANGE_SQL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
ID_FIELD = "id"
MAX_IN_VALUES = 1000
_INTEGER = re.compile(r"^-?(0|[1-9][0-9]*)$")
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any


def bad(message: str, path: str) -> BadRequest:
    return BadRequest(message, errors=[{"path": path, "message": message}])


def is_id(field: str, schema: RecordSchema) -> bool:
    return field == ID_FIELD and not schema.has_property(ID_FIELD) and ID_FIELD not in schema.hidden


def check_field(field: str, schema: RecordSchema, path: str) -> None:
    if not (is_id(field, schema) or schema.has_property(field)):
        raise bad(
            f"Unknown field {field!r}: fields must be top-level schema properties or 'id'.", path
        )


def _exact_int(raw: str, path: str) -> int:
    try:
        return int(raw)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise bad(f"{raw[:20]}... has too many digits.", path) from None


def coerce(raw: str, types: frozenset[str] | None, path: str) -> Any:
    """Turn a query-string value into the JSON value the schema says it is."""
    if types is None:
        try:
            value = jsonbody.loads(raw)
        except jsonbody.JsonBodyError:
            return raw
        return value if not isinstance(value, dict | list) else raw
    if "null" in types and raw == "null":
        return None
    if "boolean" in types and raw in ("true", "false"):
        return raw == "true"
    if "integer" in types and _INTEGER.match(raw):
        return _exact_int(raw, path)
    if "number" in types and _NUMBER.match(raw):
        number = float(raw) if any(c in raw for c in ".eE") else _exact_int(raw, path)
        if isinstance(number, float) and not math.isfinite(number):
            raise bad(f"{raw!r} is out of range.", path)
        return number
    if "string" in types:
        return raw
    raise bad(f"{raw!r} is not a valid {'/'.join(sorted(types))} value.", path)


INTEGER = frozenset({"integer"})


def coerce_for(field: str, raw: str, schema: RecordSchema, path: str) -> Any:
    if is_id(field, schema):
        return coerce(raw, INTEGER, path) if schema.integer_ids else raw
    return coerce(raw, schema.property_types.get(field), path)


def _id_value(value: Any, path: str) -> Any:
    """A row filter's value for the id of a dataset with integer ids: an integer (a
    string of decimal digits, as a grant written before ids were numbers, is one)."""
    if isinstance(value, str) and _INTEGER.match(value):
        return _exact_int(value, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad("'id' is an integer in this dataset: compare it with integers.", path)
    return value


ROW_FILTER_OPS = OPS


def row_filter_conditions(row_filter: Any, schema: RecordSchema) -> tuple[Condition, ...]:
    """Compile a grant's ``row_filter`` (``{"price": {"lt": 50}, "region": "eu"}``).

    Same fields and operators as list filters, with JSON values instead of
    query-string text. Raises BadRequest with a path for anything invalid.
    """
    if not isinstance(row_filter, dict):
        raise bad("row_filter must be an object of field conditions.", "/row_filter")
    conditions: list[Condition] = []
    for field, spec in row_filter.items():
        path = f"/row_filter/{field}"
        check_field(field, schema, path)
        ops = spec if isinstance(spec, dict) else {"eq": spec}
        if not ops:
            raise bad("an operator object cannot be empty.", path)
        for op, value in ops.items():
            if op not in OPS:
                raise bad(f"Unknown operator {op!r}; use one of {', '.join(OPS)}.", f"{path}/{op}")
            condition = _row_condition(field, op, value, f"{path}/{op}")
            if schema.integer_ids and op != "like" and is_id(field, schema):
                values = condition.value if op == "in" else [condition.value]
                numbers = [_id_value(v, f"{path}/{op}") for v in values]
                condition = Condition(field, op, numbers if op == "in" else numbers[0])
            conditions.append(condition)
    return tuple(conditions)


def _row_condition(field: str, op: str, value: Any, path: str) -> Condition:
    scalar = (str, int, float, bool, type(None))
    if op == "in":
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise bad("'in' takes a non-empty list of values.", path)
        if not all(isinstance(v, scalar) for v in value):
            raise bad("'in' values must be scalars.", path)
        return Condition(field, op, list(value))
    if op == "like":
        if not isinstance(value, str):
            raise bad("'like' takes a string pattern.", path)
        return Condition(field, op, value.replace("*", "%"))
    if not isinstance(value, scalar):
        raise bad("condition values must be scalars.", path)
    if op in RANGE_SQL and (value is None or isinstance(value, bool)):
        raise bad(f"{op!r} needs a number or a string.", path)
    return Condition(field, op, value)
