"""The record list language: filters, sort, projection and keyset pages.

``filter[field]=v`` and ``filter[field][op]=v`` with op in
``eq ne gt gte lt lte in like``; ``sort=a,-b``; ``fields=a,b``. Values are
typed by the dataset schema (``filter[price][lt]=50`` compares numbers). Every
field expression is written exactly as the per-dataset expression indexes
are, so an indexed filter or sort is an index scan, and pages are keyset
ranges (stable under concurrent inserts), never offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from entrepot import jsonbody
from entrepot.filters.conditions import (
    MAX_IN_VALUES,
    OPS,
    RANGE_SQL,
    Condition,
    bad,
    check_field,
    coerce_for,
    is_id,
)
from entrepot.filters.sql import Args, condition_sql, expr, id_cast
from entrepot.pagination import decode_cursor, encode_cursor, fingerprint, parse_limit
from entrepot.records import rfc3339
from entrepot.schema.record_schema import RecordSchema
from entrepot.store.sql import id_expr, literal

_FILTER_KEY = re.compile(r"^filter\[([^\[\]]+)\](?:\[([^\[\]]*)\])?$")
_INTEGER_ID = re.compile(r"-?(0|[1-9][0-9]{0,254})")


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


def parse(params: Iterable[tuple[str, str]], schema: RecordSchema) -> ListQuery:
    seen: set[str] = set()
    conditions: list[Condition] = []
    sort: tuple[SortKey, ...] = ()
    fields: tuple[str, ...] | None = None
    limit_raw: str | None = None
    cursor: str | None = None
    for key, raw in params:
        if key in seen:
            raise bad(f"Query parameter {key!r} is given more than once.", f"query:{key}")
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
            raise bad(f"Unknown query parameter {key!r}.", f"query:{key}")
    return ListQuery(tuple(conditions), sort, fields, parse_limit(limit_raw), cursor)


def _parse_condition(
    field: str, op: str | None, raw: str, schema: RecordSchema, key: str
) -> Condition:
    path = f"query:{key}"
    op = op if op is not None else "eq"
    if op not in OPS:
        raise bad(f"Unknown operator {op!r}; use one of {', '.join(OPS)}.", path)
    check_field(field, schema, path)
    if op == "in":
        parts = raw.split(",")
        if len(parts) > MAX_IN_VALUES:
            raise bad(f"'in' takes at most {MAX_IN_VALUES} values.", path)
        return Condition(field, op, [coerce_for(field, p, schema, path) for p in parts])
    if op == "like":
        return Condition(field, op, raw.replace("*", "%"))
    value = coerce_for(field, raw, schema, path)
    if op in RANGE_SQL and (value is None or isinstance(value, bool)):
        raise bad(f"{op!r} needs a number or a string.", path)
    return Condition(field, op, value)


def _parse_sort(raw: str, schema: RecordSchema) -> tuple[SortKey, ...]:
    keys = []
    names = set()
    for part in raw.split(","):
        descending = part.startswith("-")
        name = part[1:] if descending or part.startswith("+") else part
        check_field(name, schema, "query:sort")
        if name in names:
            raise bad(f"{name!r} appears twice in sort.", "query:sort")
        names.add(name)
        keys.append(SortKey(name, descending))
    if len(keys) > 8:
        raise bad("sort takes at most 8 fields.", "query:sort")
    return tuple(keys)


def _parse_fields(raw: str, schema: RecordSchema) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p for p in raw.split(",")))
    for name in names:
        if not schema.has_property(name):
            raise bad(f"Unknown field {name!r} in fields.", "query:fields")
    return names


def _keyset_sql(query: ListQuery, schema: RecordSchema, position: list[Any], args: Args) -> str:
    keys = list(query.sort)
    if len(position) != len(keys) + 1 or not all(isinstance(p, str) for p in position):
        raise bad("The cursor is invalid or belongs to a different query.", "query:cursor")
    exprs = [expr(k.field, schema) for k in keys] + [id_expr(schema.integer_ids)]
    casts = [id_cast(schema) if is_id(k.field, schema) else "::jsonb" for k in keys]
    casts.append(id_cast(schema))
    directions = [k.descending for k in keys]
    params = [args.add(_position_value(p, c), c) for p, c in zip(position, casts, strict=True)]
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


def _position_value(value: str, cast: str) -> Any:
    """A cursor's position value as its parameter: an integer id as a number."""
    if cast != "::numeric":
        return value
    if not _INTEGER_ID.fullmatch(value):
        raise bad("The cursor is invalid or belongs to a different query.", "query:cursor")
    return int(value)


def build_sql(
    table: str,
    dataset_id: int,
    query: ListQuery,
    schema: RecordSchema,
    extra: tuple[Condition, ...] = (),
) -> tuple[str, list[Any]]:
    """The list query; ``extra`` conditions (a grant's row filter) are ANDed in."""
    args = Args([])
    where = [f"dataset_id = {int(dataset_id)}"]
    where += [condition_sql(c, schema, args) for c in (*query.conditions, *extra)]
    if query.cursor:
        position = decode_cursor(query.cursor, query.fingerprint)
        where.append(_keyset_sql(query, schema, position, args))
    directions = [k.descending for k in query.sort]
    id_desc = bool(directions) and len(set(directions)) == 1 and directions[0]
    order = [f"{expr(k.field, schema)}{' DESC' if k.descending else ''}" for k in query.sort]
    order.append(id_expr(schema.integer_ids) + (" DESC" if id_desc else ""))
    sort_cols = "".join(f", ({expr(k.field, schema)})::text" for k in query.sort)
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
        return is_id(field, schema) or field in usable

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
    args = Args([record_id])
    where = [f"dataset_id = {int(dataset_id)}", "id = $1"]
    where += [condition_sql(c, schema, args) for c in extra]
    sql = (
        f"SELECT id, version, data::text, created_at, updated_at FROM {table} "
        f"WHERE {' AND '.join(where)}"
    )
    return sql, args.values


def _export_where(
    dataset_id: int, schema: RecordSchema, extra: tuple[Condition, ...], args: Args
) -> str:
    where = [f"dataset_id = {int(dataset_id)}"]
    where += [condition_sql(c, schema, args) for c in extra]
    return " AND ".join(where)


def build_export_sql(
    table: str, dataset_id: int, schema: RecordSchema, extra: tuple[Condition, ...]
) -> tuple[str, list[Any]]:
    """Every record's data (then id, version) in id order, limited by ``extra`` conditions."""
    args = Args([])
    where = _export_where(dataset_id, schema, extra, args)
    sql = (
        f"SELECT data::text, id, version FROM {table} WHERE {where} "
        f"ORDER BY {id_expr(schema.integer_ids)}"
    )
    return sql, args.values


# Whether a stored value fits its typed column exactly (columnar.py); {v} is its jsonb.
# A number fits a double when it is the shortest text of the double nearest to it
# (float8's output with extra_float_digits = 1, which the survey sets), as every
# number a writer parsed as a double is; an integer literal beyond 2**53 may not be.
_FITS: dict[str, str] = {
    "int64": "jsonb_typeof({v}) <> 'number' "
    "OR ({v})::numeric BETWEEN -9223372036854775808 AND 9223372036854775807",
    "float64": "jsonb_typeof({v}) <> 'number' "
    "OR ((({v})::numeric)::float8)::text::numeric = ({v})::numeric",
    "timestamp": "jsonb_typeof({v}) <> 'string' OR ({v} #>> '{{}}') ~ {date_time}",
    "date": "jsonb_typeof({v}) <> 'string' OR ({v} #>> '{{}}') ~ {date}",
}


# Each column kind (columnar.py) as PostgreSQL computes it from the record's jsonb {v}:
# typed values asyncpg decodes in C, so rows need no JSON parsing in Python. JSON null
# is SQL NULL (NULLIF: a cast of JSON null would fail). Timestamps are microseconds
# since the epoch and dates days since it, which Arrow takes as they are; the survey
# has admitted every value a cast meets (in range, RFC 3339 the casts read exactly).
_COLUMN: dict[str, str] = {
    "int64": "(NULLIF({v}, 'null'))::numeric::int8",
    "float64": "(NULLIF({v}, 'null'))::numeric::float8",
    "bool": "(NULLIF({v}, 'null'))::boolean",
    "string": "({v} #>> '{{}}')",
    "timestamp": "(extract(epoch FROM upper({v} #>> '{{}}')::timestamptz) * 1000000)::int8",
    "date": "(upper({v} #>> '{{}}')::date - DATE '1970-01-01')",
    "json": "(NULLIF({v}, 'null'))::text",
    "text": "CASE jsonb_typeof({v}) WHEN 'string' THEN {v} #>> '{{}}' "
    "WHEN 'null' THEN NULL ELSE ({v})::text END",
}


def build_columnar_sql(
    table: str,
    dataset_id: int,
    schema: RecordSchema,
    extra: tuple[Condition, ...],
    columns: Sequence[tuple[str, str]],
    undeclared_beyond: Sequence[str] | None,
) -> tuple[str, list[Any]]:
    """:func:`build_export_sql`'s rows as ``id, version``, then each ``(property, kind)``
    as its column computes it, then, given ``undeclared_beyond`` (the declared
    properties), the record's other keys as a JSON object (NULL when none)."""
    args = Args([])
    where = _export_where(dataset_id, schema, extra, args)
    selected = ["id", "version"]
    selected += [_COLUMN[kind].format(v=f"data -> {literal(prop)}") for prop, kind in columns]
    if undeclared_beyond is not None:
        names = ", ".join(literal(name) for name in undeclared_beyond)
        selected.append(f"NULLIF(data - ARRAY[{names}]::text[], '{{}}'::jsonb)::text")
    sql = (
        f"SELECT {', '.join(selected)} FROM {table} WHERE {where} "
        f"ORDER BY {id_expr(schema.integer_ids)}"
    )
    return sql, args.values


def build_survey_sql(
    table: str,
    dataset_id: int,
    schema: RecordSchema,
    extra: tuple[Condition, ...],
    checks: Sequence[tuple[str, str]],
) -> tuple[str, list[Any]]:
    """One row: for each ``(property, check)``, whether every exported value fits
    (over the rows :func:`build_export_sql` returns, with the same conditions)."""
    args = Args([])
    where = _export_where(dataset_id, schema, extra, args)
    answers = ", ".join(
        "COALESCE(bool_and("
        + _FITS[check].format(
            v=f"data -> {literal(prop)}",
            date_time=literal(rfc3339.DATE_TIME),
            date=literal(rfc3339.DATE),
        )
        + "), true)"
        for prop, check in checks
    )
    return f"SELECT {answers} FROM {table} WHERE {where}", args.values
