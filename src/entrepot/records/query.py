"""The record list language: filters, sort, projection and keyset pages.

``filter[field]=v`` and ``filter[field][op]=v`` with op in
``eq ne gt gte lt lte in like``; ``sort=a,-b``; ``fields=a,b``. Values are
typed by the dataset schema (``filter[price][lt]=50`` compares numbers). Every
field expression is written exactly as the per-dataset expression indexes
are, so an indexed filter or sort is an index scan, and pages are keyset
ranges (stable under concurrent inserts), never offsets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from entrepot import jsonbody
from entrepot.catalog.record_schema import RecordSchema
from entrepot.pagination import decode_cursor, encode_cursor, fingerprint, parse_limit
from entrepot.problems import BadRequest
from entrepot.store.sql import field_expr, literal

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "like")
RANGE_SQL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
ID_FIELD = "id"
MAX_IN_VALUES = 1000
_FILTER_KEY = re.compile(r"^filter\[([^\[\]]+)\](?:\[([^\[\]]*)\])?$")
_INTEGER = re.compile(r"^-?(0|[1-9][0-9]*)$")
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool


@dataclass(frozen=True)
class ListQuery:
    conditions: tuple[Condition, ...]
    sort: tuple[SortKey, ...]
    fields: tuple[str, ...] | None
    limit: int
    cursor: str | None

    @property
    def fingerprint(self) -> str:
        return fingerprint(
            [(c.field, c.op, jsonbody.dumps(c.value)) for c in self.conditions],
            [(s.field, s.descending) for s in self.sort],
        )


def _bad(message: str, path: str) -> BadRequest:
    return BadRequest(message, errors=[{"path": path, "message": message}])


def _is_id(field: str, schema: RecordSchema) -> bool:
    return field == ID_FIELD and not schema.has_property(ID_FIELD) and ID_FIELD not in schema.hidden


def _check_field(field: str, schema: RecordSchema, path: str) -> None:
    if not (_is_id(field, schema) or schema.has_property(field)):
        raise _bad(
            f"Unknown field {field!r}: fields must be top-level schema properties or 'id'.", path
        )


def _exact_int(raw: str, path: str) -> int:
    try:
        return int(raw)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise _bad(f"{raw[:20]}... has too many digits.", path) from None


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
            raise _bad(f"{raw!r} is out of range.", path)
        return number
    if "string" in types:
        return raw
    raise _bad(f"{raw!r} is not a valid {'/'.join(sorted(types))} value.", path)


def _coerce_for(field: str, raw: str, schema: RecordSchema, path: str) -> Any:
    if _is_id(field, schema):
        return raw
    return coerce(raw, schema.property_types.get(field), path)


def parse(params: Iterable[tuple[str, str]], schema: RecordSchema) -> ListQuery:
    seen: set[str] = set()
    conditions: list[Condition] = []
    sort: tuple[SortKey, ...] = ()
    fields: tuple[str, ...] | None = None
    limit_raw: str | None = None
    cursor: str | None = None
    for key, raw in params:
        if key in seen:
            raise _bad(f"Query parameter {key!r} is given more than once.", f"query:{key}")
        seen.add(key)
        if key == "limit":
            limit_raw = raw
        elif key == "cursor":
            cursor = raw
        elif key == "sort":
            sort = _parse_sort(raw, schema)
        elif key == "fields":
            fields = _parse_fields(raw, schema)
        elif match := _FILTER_KEY.match(key):
            conditions.append(_parse_condition(match.group(1), match.group(2), raw, schema, key))
        else:
            raise _bad(f"Unknown query parameter {key!r}.", f"query:{key}")
    return ListQuery(tuple(conditions), sort, fields, parse_limit(limit_raw), cursor)


def _parse_condition(
    field: str, op: str | None, raw: str, schema: RecordSchema, key: str
) -> Condition:
    path = f"query:{key}"
    op = op if op is not None else "eq"
    if op not in OPS:
        raise _bad(f"Unknown operator {op!r}; use one of {', '.join(OPS)}.", path)
    _check_field(field, schema, path)
    if op == "in":
        parts = raw.split(",")
        if len(parts) > MAX_IN_VALUES:
            raise _bad(f"'in' takes at most {MAX_IN_VALUES} values.", path)
        return Condition(field, op, [_coerce_for(field, p, schema, path) for p in parts])
    if op == "like":
        return Condition(field, op, raw.replace("*", "%"))
    value = _coerce_for(field, raw, schema, path)
    if op in RANGE_SQL and (value is None or isinstance(value, bool)):
        raise _bad(f"{op!r} needs a number or a string.", path)
    return Condition(field, op, value)


def _parse_sort(raw: str, schema: RecordSchema) -> tuple[SortKey, ...]:
    keys = []
    names = set()
    for part in raw.split(","):
        descending = part.startswith("-")
        name = part[1:] if descending or part.startswith("+") else part
        _check_field(name, schema, "query:sort")
        if name in names:
            raise _bad(f"{name!r} appears twice in sort.", "query:sort")
        names.add(name)
        keys.append(SortKey(name, descending))
    if len(keys) > 8:
        raise _bad("sort takes at most 8 fields.", "query:sort")
    return tuple(keys)


def _parse_fields(raw: str, schema: RecordSchema) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p for p in raw.split(",")))
    for name in names:
        if not schema.has_property(name):
            raise _bad(f"Unknown field {name!r} in fields.", "query:fields")
    return names


# --- SQL ------------------------------------------------------------------


def _expr(field: str, schema: RecordSchema, column: str = "data") -> str:
    return "id" if _is_id(field, schema) else field_expr(field, column)


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    return "number"


@dataclass
class _Args:
    values: list[Any]

    def add(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{cast}"


def _condition_sql(cond: Condition, schema: RecordSchema, args: _Args, column: str = "data") -> str:
    """``cond`` as SQL over the jsonb document in ``column`` (and the ``id`` column)."""
    is_id = _is_id(cond.field, schema)
    expr = _expr(cond.field, schema, column)
    cast = "" if is_id else "::jsonb"
    as_param = (lambda v: v) if is_id else jsonbody.dumps
    if cond.op == "eq":
        return f"{expr} = {args.add(as_param(cond.value), cast)}"
    if cond.op == "ne":
        return f"{expr} <> {args.add(as_param(cond.value), cast)}"
    if cond.op == "in":
        array_cast = "::text[]" if is_id else "::jsonb[]"
        return f"{expr} = ANY({args.add([as_param(v) for v in cond.value], array_cast)})"
    if cond.op == "like":
        text_expr = "id" if is_id else f"({column} ->> {literal(cond.field)})"
        return f"{text_expr} LIKE {args.add(cond.value)}"
    sql = f"{expr} {RANGE_SQL[cond.op]} {args.add(as_param(cond.value), cast)}"
    if not is_id:
        sql += f" AND jsonb_typeof({expr}) = '{_json_type(cond.value)}'"
    return sql


def _keyset_sql(query: ListQuery, schema: RecordSchema, position: list[Any], args: _Args) -> str:
    keys = list(query.sort)
    if len(position) != len(keys) + 1 or not all(isinstance(p, str) for p in position):
        raise _bad("The cursor is invalid or belongs to a different query.", "query:cursor")
    exprs = [_expr(k.field, schema) for k in keys] + ["id"]
    casts = ["" if _is_id(k.field, schema) else "::jsonb" for k in keys] + [""]
    directions = [k.descending for k in keys]
    params = [args.add(p, c) for p, c in zip(position, casts, strict=True)]
    if len(set(directions)) <= 1:
        op = "<" if directions and directions[0] else ">"
        return f"({', '.join(exprs)}) {op} ({', '.join(params)})"
    id_descending = False
    directions.append(id_descending)
    ors = []
    for i in range(len(exprs)):
        parts = [f"{exprs[j]} = {params[j]}" for j in range(i)]
        parts.append(f"{exprs[i]} {'<' if directions[i] else '>'} {params[i]}")
        ors.append("(" + " AND ".join(parts) + ")")
    return "(" + " OR ".join(ors) + ")"


def build_sql(
    table: str,
    dataset_id: int,
    query: ListQuery,
    schema: RecordSchema,
    extra: tuple[Condition, ...] = (),
) -> tuple[str, list[Any]]:
    """The list query; ``extra`` conditions (a grant's row filter) are ANDed in."""
    args = _Args([])
    where = [f"dataset_id = {int(dataset_id)}"]
    where += [_condition_sql(c, schema, args) for c in (*query.conditions, *extra)]
    if query.cursor:
        position = decode_cursor(query.cursor, query.fingerprint)
        where.append(_keyset_sql(query, schema, position, args))
    directions = [k.descending for k in query.sort]
    id_desc = bool(directions) and len(set(directions)) == 1 and directions[0]
    order = [f"{_expr(k.field, schema)}{' DESC' if k.descending else ''}" for k in query.sort]
    order.append("id DESC" if id_desc else "id")
    sort_cols = "".join(f", ({_expr(k.field, schema)})::text" for k in query.sort)
    sql = (
        f"SELECT id, version, data::text, created_at, updated_at{sort_cols} FROM {table} "
        f"WHERE {' AND '.join(where)} ORDER BY {', '.join(order)} LIMIT {args.add(query.limit + 1)}"
    )
    return sql, args.values


INDEX_OPS = frozenset({"eq", "in", "gt", "gte", "lt", "lte"})  # what a btree index can serve


def scan_fields(query: ListQuery, schema: RecordSchema, indexed: Iterable[str]) -> list[str]:
    """The fields that would make this list read the whole dataset; [] if none would.

    A list is index-backed when one of its conditions can use an index (an
    indexed field, or the id, compared by eq, in or a range), or, without
    conditions, when it is in id order or its first sort key is indexed.
    Otherwise PostgreSQL must read every record to find the page: the fields
    it reads them for (unindexed, or compared in a way no index serves) are
    returned, for the caller to be told what to index.
    """
    usable = {*indexed}

    def served(field: str) -> bool:
        return _is_id(field, schema) or field in usable

    if any(served(c.field) and c.op in INDEX_OPS for c in query.conditions):
        return []
    if not query.conditions:
        if not query.sort or served(query.sort[0].field):
            return []
        return [query.sort[0].field]
    return list(dict.fromkeys(c.field for c in query.conditions))


def next_cursor(query: ListQuery, last_row: Any) -> str:
    position = [last_row[5 + i] for i in range(len(query.sort))] + [last_row[0]]
    return encode_cursor(position, query.fingerprint)


def build_get_sql(
    table: str, dataset_id: int, record_id: str, schema: RecordSchema, extra: tuple[Condition, ...]
) -> tuple[str, list[Any]]:
    """One record by id, found only if it passes ``extra`` conditions (a row filter)."""
    args = _Args([record_id])
    where = [f"dataset_id = {int(dataset_id)}", "id = $1"]
    where += [_condition_sql(c, schema, args) for c in extra]
    sql = (
        f"SELECT id, version, data::text, created_at, updated_at FROM {table} "
        f"WHERE {' AND '.join(where)}"
    )
    return sql, args.values


ROW_FILTER_OPS = OPS


def row_filter_conditions(row_filter: Any, schema: RecordSchema) -> tuple[Condition, ...]:
    """Compile a grant's ``row_filter`` (``{"price": {"lt": 50}, "region": "eu"}``).

    Same fields and operators as list filters, with JSON values instead of
    query-string text. Raises BadRequest with a path for anything invalid.
    """
    if not isinstance(row_filter, dict):
        raise _bad("row_filter must be an object of field conditions.", "/row_filter")
    conditions: list[Condition] = []
    for field, spec in row_filter.items():
        path = f"/row_filter/{field}"
        _check_field(field, schema, path)
        ops = spec if isinstance(spec, dict) else {"eq": spec}
        if not ops:
            raise _bad("an operator object cannot be empty.", path)
        for op, value in ops.items():
            if op not in OPS:
                raise _bad(f"Unknown operator {op!r}; use one of {', '.join(OPS)}.", f"{path}/{op}")
            conditions.append(_row_condition(field, op, value, f"{path}/{op}"))
    return tuple(conditions)


def _row_condition(field: str, op: str, value: Any, path: str) -> Condition:
    scalar = (str, int, float, bool, type(None))
    if op == "in":
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise _bad("'in' takes a non-empty list of values.", path)
        if not all(isinstance(v, scalar) for v in value):
            raise _bad("'in' values must be scalars.", path)
        return Condition(field, op, list(value))
    if op == "like":
        if not isinstance(value, str):
            raise _bad("'like' takes a string pattern.", path)
        return Condition(field, op, value.replace("*", "%"))
    if not isinstance(value, scalar):
        raise _bad("condition values must be scalars.", path)
    if op in RANGE_SQL and (value is None or isinstance(value, bool)):
        raise _bad(f"{op!r} needs a number or a string.", path)
    return Condition(field, op, value)


def build_export_sql(
    table: str, dataset_id: int, schema: RecordSchema, extra: tuple[Condition, ...]
) -> tuple[str, list[Any]]:
    """Every record's data (then id, version) in id order, limited by ``extra`` conditions."""
    args = _Args([])
    where = [f"dataset_id = {int(dataset_id)}"]
    where += [_condition_sql(c, schema, args) for c in extra]
    sql = f"SELECT data::text, id, version FROM {table} WHERE {' AND '.join(where)} ORDER BY id"
    return sql, args.values


def build_feed_sql(
    dataset_id: int,
    after: int,
    limit: int,
    schema: RecordSchema,
    extra: tuple[Condition, ...],
    fields: frozenset[str] | None = None,
) -> tuple[str, list[Any]]:
    """Up to ``limit`` changes after ``after`` in seq order, each as a narrowed grantee sees it.

    A grantee limited by the row filter ``extra`` and to the visible ``fields``
    sees a change by whether the record was visible to it before and after:
    visible after is an upsert, visible only before is a delete (it never sees
    the data that took the record out), visible neither is nothing (``op`` and
    ``data`` NULL), and a change that leaves every visible field as it was is
    nothing too. Rows shown as nothing are still returned, so the reader knows
    how far the page reached without the hidden changes being rendered.
    """
    args = _Args([int(dataset_id), int(after)])
    page = (
        "SELECT seq, op, record_id AS id, version, data, prev, prev_known, at FROM changes "
        f"WHERE dataset_id = $1 AND seq > $2 ORDER BY seq LIMIT {args.add(int(limit))}"
    )
    if not extra and fields is None:
        sql = f"SELECT seq, op, id, version, data::text AS data, at FROM ({page}) c ORDER BY seq"
        return sql, args.values

    def visible(column: str) -> str:
        if not extra:
            return "true"
        conditions = " AND ".join(_condition_sql(c, schema, args, column) for c in extra)
        return f"coalesce(({conditions}), false)"

    after_visible = f"(c.op = 'upsert' AND {visible('c.data')})"
    # A change written before its previous state was recorded may have been visible before.
    before_visible = f"(NOT c.prev_known OR (c.prev IS NOT NULL AND {visible('c.prev')}))"
    same = "false"
    if fields is not None:
        same = " AND ".join(
            ["c.prev_known", "c.prev IS NOT NULL"]
            + [
                f"(c.data -> {literal(f)}) IS NOT DISTINCT FROM (c.prev -> {literal(f)})"
                for f in sorted(fields)
            ]
        )
    op_sql = (
        f"CASE WHEN {after_visible} AND {before_visible} AND {same} THEN NULL "
        f"WHEN {after_visible} THEN 'upsert' WHEN {before_visible} THEN 'delete' END"
    )
    sql = (
        f"SELECT seq, op, id, version, CASE WHEN op = 'upsert' THEN data::text END AS data, at "
        f"FROM (SELECT c.seq, {op_sql} AS op, c.id, c.version, c.data, c.at FROM ({page}) c) v "
        "ORDER BY seq"
    )
    return sql, args.values
