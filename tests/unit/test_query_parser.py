"""The record list language: parsing, typing by schema, SQL generation, cursors.

Invariant under test: any query string either parses or is refused with
:class:`BadRequest` (a 400 problem), and the SQL built from a parsed query only
ever carries field names as properly quoted string literals and values as
``$n`` parameters, whatever the field names are (quotes, unicode, brackets).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.filters import conditions as filters
from entrepot.filters.conditions import Condition
from entrepot.pagination import decode_cursor, encode_cursor
from entrepot.problems import BadRequest
from entrepot.records import query
from entrepot.records.query import ListQuery, SortKey
from entrepot.schema.record_schema import RecordSchema

WEIRD_FIELDS: dict[str, Any] = {
    "price": {"type": "number"},
    "stock": {"type": "integer"},
    "name": {"type": "string"},
    "active": {"type": "boolean"},
    "maybe": {"type": ["integer", "null"]},
    "free": {},
    "tags": {"type": "array"},
    "it's": {"type": "string"},
    "ünïcödé ✓ 字段": {"type": "string"},
    "a[b]": {"type": "integer"},
    'quo"te': {"type": "number"},
    "x') OR 1=1 --": {"type": "string"},
    "$1": {"type": "string"},
    "back\\slash": {"type": "string"},
    "semi;colon": {"type": ["string", "number"]},
    "\U0001f600 emoji": {"type": "boolean"},
}
SCHEMA = RecordSchema.compile({"type": "object", "properties": WEIRD_FIELDS})
FIELDS = sorted(WEIRD_FIELDS)
# Names the filter syntax can address: filter[<name>] cannot contain brackets.
FILTERABLE = [f for f in FIELDS if "[" not in f and "]" not in f]
# Names sort= and fields= can address: comma-separated, a leading +/- is a direction.
SORTABLE = [f for f in FIELDS if "," not in f and not f.startswith(("+", "-"))]
FIXED_LITERALS = {"null", "string", "number"}
TABLE = "records_42"

_LITERAL = re.compile(r"'(?:[^']|'')*'")
_SKELETON_ALPHABET = re.compile(r"^[A-Za-z0-9_ ,():=<>$'?\[\]-]*$")
_PLACEHOLDER = re.compile(r"\$(\d+)")


def split_sql(sql: str) -> tuple[str, list[str]]:
    """The SQL with every string literal replaced by '?', and the literals' values."""
    literals = [m.group(0)[1:-1].replace("''", "'") for m in _LITERAL.finditer(sql)]
    return _LITERAL.sub("'?'", sql), literals


def assert_safe_sql(sql: str, args: list[Any], schema: RecordSchema, names: list[str]) -> None:
    skeleton, literals = split_sql(sql)
    # Outside literals only our own fixed vocabulary appears: no user text at all.
    assert skeleton.isascii(), skeleton
    assert _SKELETON_ALPHABET.match(skeleton), skeleton
    assert skeleton.count("'") % 2 == 0
    for name in names:
        if _SKELETON_ALPHABET.match(name) is None:
            assert name not in skeleton, (name, skeleton)
    assert "OR 1=1" not in skeleton
    # Every literal is a schema field name or one of the fixed type words.
    for text in literals:
        assert schema.has_property(text) or text in FIXED_LITERALS, text
    # Parameters are numbered 1..n, each used, one per argument.
    used = {int(n) for n in _PLACEHOLDER.findall(skeleton)}
    assert used == set(range(1, len(args) + 1)), (used, args)


# --- strategies -------------------------------------------------------------

any_text = st.text(max_size=30)
values = st.one_of(
    any_text,
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", "null", "1e400", "-0", "NaN", "", ",", "*", "1,2,3"]),
    st.text("0123456789", min_size=4000, max_size=5000),
)
ops = st.one_of(st.sampled_from([*filters.OPS, "", "EQ", "regex", "in ", "eq]"]), any_text)
field_names = st.one_of(st.sampled_from([*FIELDS, "id", "nope"]), any_text)


@st.composite
def param_keys(draw: st.DrawFn) -> str:
    kind = draw(
        st.sampled_from(["filter", "filter_op", "sort", "fields", "limit", "cursor", "raw"])
    )
    if kind == "filter":
        return f"filter[{draw(field_names)}]"
    if kind == "filter_op":
        return f"filter[{draw(field_names)}][{draw(ops)}]"
    if kind == "raw":
        return draw(any_text)
    return kind


@st.composite
def sort_values(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(st.sampled_from([*FIELDS, "id"]), any_text), max_size=10))
    return ",".join(draw(st.sampled_from(["", "-", "+"])) + p for p in parts)


params_lists = st.lists(
    st.one_of(
        st.tuples(param_keys(), values),
        st.tuples(st.just("sort"), sort_values()),
        st.tuples(st.just("fields"), sort_values()),
    ),
    max_size=8,
)


# --- parse: total function onto ListQuery | BadRequest -----------------------


@settings(max_examples=500, deadline=None)
@given(params=params_lists)
def test_any_params_parse_or_raise_bad_request(params: list[tuple[str, str]]) -> None:
    try:
        parsed = query.parse(params, SCHEMA)
    except BadRequest as exc:
        body = exc.body()
        assert body["status"] == 400
        assert body["errors"]
        assert all(e["path"].startswith("query:") for e in body["errors"])
        return
    assert 1 <= parsed.limit <= 1000
    for cond in parsed.conditions:
        assert cond.op in filters.OPS
        assert SCHEMA.has_property(cond.field) or cond.field == "id"
    for key in parsed.sort:
        assert SCHEMA.has_property(key.field) or key.field == "id"
    try:
        sql, args = query.build_sql(TABLE, 42, parsed, SCHEMA)
    except BadRequest:
        assert parsed.cursor is not None  # only a cursor can be refused at build time
        return
    assert_safe_sql(sql, args, SCHEMA, FIELDS)


def test_repeated_parameter_is_refused() -> None:
    with pytest.raises(BadRequest) as err:
        query.parse([("filter[name]", "a"), ("filter[name]", "b")], SCHEMA)
    message = "Query parameter 'filter[name]' is given more than once."
    assert err.value.detail == message
    assert err.value.errors == [{"path": "query:filter[name]", "message": message}]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("filter[nope]", "1"),
        ("filter[nope][eq]", "1"),
        ("filter[price][regex]", "1"),
        ("filter[price][]", "1"),
        ("filter[price][EQ]", "1"),
        ("filter[a[b]]", "1"),
        ("filter[]", "1"),
        ("filter", "1"),
        ("filter[price", "1"),
        ("filter[price][lt][x]", "1"),
        ("where", "1"),
        ("sort", "nope"),
        ("sort", "price,-price"),
        ("sort", ""),
        (
            "sort",
            ",".join(["price", "stock", "name", "active", "maybe", "free", "tags", "it's", "id"]),
        ),
        ("fields", "nope"),
        ("fields", "id"),
        ("limit", "0"),
        ("limit", "1001"),
        ("limit", "ten"),
        ("limit", "9" * 5000),
    ],
)
def test_unknown_fields_ops_and_params_are_bad_requests(key: str, value: str) -> None:
    with pytest.raises(BadRequest):
        query.parse([(key, value)], SCHEMA)


@pytest.mark.parametrize("field", FILTERABLE)
@pytest.mark.parametrize("op", filters.OPS)
def test_every_filterable_field_and_op_builds_safe_sql(field: str, op: str) -> None:
    raw = {"price": "1.5", "stock": "3", "active": "true", "\U0001f600 emoji": "true"}.get(
        field, "7"
    )
    try:
        parsed = query.parse([(f"filter[{field}][{op}]", raw)], SCHEMA)
    except BadRequest:
        # Only ordering a boolean or an array is meaningless.
        assert op in ("gt", "gte", "lt", "lte") or field == "tags"
        return
    assert parsed.conditions[0].field == field
    sql, args = query.build_sql(TABLE, 42, parsed, SCHEMA)
    assert_safe_sql(sql, args, SCHEMA, FIELDS)
    assert field in split_sql(sql)[1]
    assert args[-1] == parsed.limit + 1


# --- coerce: values typed by the schema ---------------------------------------


@pytest.mark.parametrize(
    ("raw", "types", "expected"),
    [
        ("5", {"integer"}, 5),
        ("-0", {"integer"}, 0),
        ("12345678901234567890123", {"integer"}, 12345678901234567890123),
        ("5", {"number"}, 5),
        ("1.5", {"number"}, 1.5),
        ("-2e3", {"number"}, -2000.0),
        ("5", {"string"}, "5"),
        ("true", {"string"}, "true"),
        ("true", {"boolean"}, True),
        ("false", {"boolean"}, False),
        ("null", {"integer", "null"}, None),
        ("null", {"string"}, "null"),
        ("7", {"integer", "string"}, 7),
        ("x", {"integer", "string"}, "x"),
        ("5", None, 5),
        ("1.25", None, 1.25),
        ('"quoted"', None, "quoted"),
        ("plain", None, "plain"),
        ("true", None, True),
        ("null", None, None),
        ("[1,2]", None, "[1,2]"),
        ('{"a":1}', None, '{"a":1}'),
        ("NaN", None, "NaN"),
        ("1e400", None, "1e400"),
        ("9" * 5000, None, "9" * 5000),
    ],
)
def test_coerce_by_schema_type(raw: str, types: set[str] | None, expected: Any) -> None:
    value = filters.coerce(raw, frozenset(types) if types is not None else None, "query:x")
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "types"),
    [
        ("5.0", {"integer"}),
        ("1e3", {"integer"}),
        ("0x10", {"integer"}),
        ("05", {"integer"}),
        (" 5", {"integer"}),
        ("", {"integer"}),
        ("five", {"number"}),
        ("1e400", {"number"}),
        ("-1e400", {"number"}),
        ("NaN", {"number"}),
        ("Infinity", {"number"}),
        ("True", {"boolean"}),
        ("1", {"boolean"}),
        ("x", {"array"}),
        ("x", {"object"}),
        ("x", {"null"}),
        ("9" * 5000, {"integer"}),
        ("9" * 5000, {"number"}),
        ("-" + "9" * 4301, {"integer"}),
    ],
)
def test_coerce_refuses_values_the_type_cannot_hold(raw: str, types: set[str]) -> None:
    with pytest.raises(BadRequest) as err:
        filters.coerce(raw, frozenset(types), "query:filter[x]")
    assert err.value.errors[0]["path"] == "query:filter[x]"  # type: ignore[index]


type_sets = st.one_of(
    st.none(),
    st.frozensets(
        st.sampled_from(["string", "number", "integer", "boolean", "null", "array", "object"]),
        min_size=1,
    ),
)


@settings(max_examples=400, deadline=None)
@given(raw=values, types=type_sets)
def test_coerce_returns_a_value_of_a_declared_type_or_bad_request(
    raw: str, types: frozenset[str] | None
) -> None:
    try:
        value = filters.coerce(raw, types, "query:filter[f]")
    except BadRequest:
        assert types is not None
        return
    if types is None:
        assert value is None or isinstance(value, str | int | float | bool)
        return
    kinds = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "string": isinstance(value, str),
    }
    assert any(kinds.get(t, False) for t in types), (raw, types, value)
    if isinstance(value, float):
        assert math.isfinite(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        assert json.loads(json.dumps(value)) == value


# --- SQL: generated field names ----------------------------------------------

schema_field_names = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12
)


@st.composite
def random_schema_and_query(draw: st.DrawFn) -> tuple[RecordSchema, ListQuery]:
    names = draw(st.lists(schema_field_names, min_size=1, max_size=6, unique=True))
    declared = {
        name: draw(
            st.sampled_from(
                [
                    {},
                    {"type": "string"},
                    {"type": "number"},
                    {"type": "integer"},
                    {"type": "boolean"},
                ]
            )
        )
        for name in names
    }
    schema = RecordSchema.compile({"type": "object", "properties": declared})
    targets = names if "id" in names else [*names, "id"]
    conditions = []
    for _ in range(draw(st.integers(0, 4))):
        field = draw(st.sampled_from(targets))
        op = draw(st.sampled_from(filters.OPS))
        scalar = st.one_of(
            st.text(max_size=10), st.integers(), st.floats(allow_nan=False, allow_infinity=False)
        )
        if field == "id" and "id" not in declared:
            scalar = st.text(max_size=10)
        if op in ("gt", "gte", "lt", "lte"):
            value: Any = draw(scalar.filter(lambda v: not isinstance(v, bool)))
            if isinstance(value, float) and not math.isfinite(value):
                value = 0.5
        elif op == "in":
            value = draw(st.lists(st.one_of(scalar, st.none()), min_size=1, max_size=3))
        elif op == "like":
            value = draw(st.text(max_size=10))
        else:
            value = draw(st.one_of(scalar, st.booleans(), st.none()))
            if isinstance(value, float) and not math.isfinite(value):
                value = 0.5
        conditions.append(Condition(field, op, value))
    sort_fields = draw(st.lists(st.sampled_from(targets), unique=True, max_size=4))
    sort = tuple(SortKey(f, draw(st.booleans())) for f in sort_fields)
    parsed = ListQuery(tuple(conditions), sort, None, draw(st.integers(1, 1000)), None)
    return schema, parsed


@settings(max_examples=300, deadline=None)
@given(case=random_schema_and_query(), position_seed=st.text(max_size=8))
def test_sql_quotes_any_field_name_and_binds_every_value(
    case: tuple[RecordSchema, ListQuery], position_seed: str
) -> None:
    schema, parsed = case
    names = list(schema.property_types)
    sql, args = query.build_sql(TABLE, 42, parsed, schema)
    assert_safe_sql(sql, args, schema, names)
    # Each condition contributes exactly its value(s), bound as parameters.
    index = 0
    for cond in parsed.conditions:
        arg = args[index]
        index += 1
        is_id = cond.field == "id" and not schema.has_property("id")
        if cond.op == "like" or is_id:
            assert arg == cond.value
        elif cond.op == "in":
            assert [json.loads(a) for a in arg] == cond.value
        else:
            assert json.loads(arg) == cond.value
    assert args[index] == parsed.limit + 1
    # A cursor position is bound too, one parameter per sort key plus the id.
    position = [json.dumps(position_seed)] * len(parsed.sort) + [position_seed]
    paged = ListQuery(
        parsed.conditions,
        parsed.sort,
        None,
        parsed.limit,
        encode_cursor(position, parsed.fingerprint),
    )
    sql, args = query.build_sql(TABLE, 42, paged, schema)
    assert_safe_sql(sql, args, schema, names)
    assert position_seed in args


# --- cursors ------------------------------------------------------------------


def _row(record_id: str, *sort_values: str) -> tuple[Any, ...]:
    return (record_id, 1, "{}", None, None, *sort_values)


def test_next_cursor_resumes_after_the_last_row() -> None:
    parsed = query.parse([("sort", "-price,it's"), ("filter[stock][gte]", "2")], SCHEMA)
    cursor = query.next_cursor(parsed, _row("01ABC", "9.5", '"x"'))
    assert decode_cursor(cursor, parsed.fingerprint) == ["9.5", '"x"', "01ABC"]
    resumed = query.parse(
        [("sort", "-price,it's"), ("filter[stock][gte]", "2"), ("cursor", cursor)], SCHEMA
    )
    sql, args = query.build_sql(TABLE, 42, resumed, SCHEMA)
    assert_safe_sql(sql, args, SCHEMA, FIELDS)
    assert args[1:4] == ["9.5", '"x"', "01ABC"]


@pytest.mark.parametrize(
    "other",
    [
        [("sort", "price,it's")],
        [("sort", "-price,it's"), ("filter[stock][gte]", "3")],
        [("sort", "-price,it's"), ("filter[stock][gt]", "2")],
        [("sort", "-price")],
        [("filter[stock][gte]", "2")],
    ],
)
def test_cursor_from_one_query_is_refused_by_another(other: list[tuple[str, str]]) -> None:
    first = query.parse([("sort", "-price,it's"), ("filter[stock][gte]", "2")], SCHEMA)
    cursor = query.next_cursor(first, _row("01ABC", "9.5", '"x"'))
    replayed = query.parse([*other, ("cursor", cursor)], SCHEMA)
    with pytest.raises(BadRequest):
        query.build_sql(TABLE, 42, replayed, SCHEMA)


def test_limit_and_fields_do_not_change_the_cursor_fingerprint() -> None:
    first = query.parse([("sort", "name"), ("limit", "2")], SCHEMA)
    cursor = query.next_cursor(first, _row("r1", '"a"'))
    again = query.parse(
        [("sort", "name"), ("limit", "7"), ("fields", "name"), ("cursor", cursor)], SCHEMA
    )
    _, args = query.build_sql(TABLE, 42, again, SCHEMA)
    assert args[:2] == ['"a"', "r1"]


@settings(max_examples=200, deadline=None)
@given(position=st.lists(st.one_of(st.text(max_size=5), st.integers(-5, 5), st.none()), max_size=5))
def test_forged_cursor_with_the_right_fingerprint_but_wrong_shape_is_refused(
    position: list[Any],
) -> None:
    parsed = query.parse([("sort", "name,-price")], SCHEMA)
    forged = ListQuery(
        parsed.conditions, parsed.sort, None, 10, encode_cursor(position, parsed.fingerprint)
    )
    well_formed = len(position) == 3 and all(isinstance(p, str) for p in position)
    if well_formed:
        query.build_sql(TABLE, 42, forged, SCHEMA)
    else:
        with pytest.raises(BadRequest):
            query.build_sql(TABLE, 42, forged, SCHEMA)
