"""Parquet and Arrow IPC exports, read back as analysts read them (pyarrow, pandas,
DuckDB) and compared with the NDJSON export of the same dataset: values and types.

The comparison is the documented mapping (docs/bulk.md, "Parquet and Arrow"): a
typed column holds the JSON value itself; a JSON column, the value's JSON text; a
timestamp, the date-time's instant; a column demoted to text, the value's decimal
text; an absent field and a JSON null are both null.
"""

from __future__ import annotations

import datetime
import io
import json
import math
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot import jsonbody
from entrepot.records import export
from tests.factories import granted, make_app, make_dataset, make_key, make_org
from tests.integration.bulk_helpers import ndjson, post_import
from tests.integration.test_export import RECORDS, rich_dataset

FORMATS = ["parquet", "arrow"]
JSON = pa.json_(pa.string())
UTC = datetime.UTC

TYPED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "qty": {"type": "integer"},
        "price": {"type": "number"},
        "weight": {"type": ["integer", "number", "null"]},
        "active": {"type": "boolean"},
        "seen": {"type": "string", "format": "date-time"},
        "born": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "dims": {"type": "object", "properties": {"w": {"type": "number"}}},
        "either": {"type": ["string", "integer"]},
        "free": {},
    },
    "required": ["sku", "qty", "active"],
    "additionalProperties": False,
}
TYPED_RECORDS: list[dict[str, Any]] = [
    {
        "sku": "a",
        "qty": 9223372036854775807,
        "price": 0.1,
        "weight": 3,
        "active": True,
        "seen": "2024-02-29T23:59:59.123456Z",
        "born": "1969-12-31",
        "tags": ["x", "ü"],
        "dims": {"w": 1.5},
        "either": "7",
        "free": [1, {"k": None}],
    },
    {
        "sku": "b",
        "qty": -9223372036854775808,
        "active": False,
        "seen": "2024-03-01T01:30:00+02:00",
        "born": "0001-01-01",
        "either": 7,
        "free": "text",
        "weight": None,
    },
    {"sku": "c", "qty": 0, "price": 1e20, "active": True, "seen": "1900-01-01t00:00:00.5z"},
]
EXPECTED_TYPES = {
    "_id": (pa.string(), False),
    "_version": (pa.int64(), False),
    "sku": (pa.string(), False),
    "qty": (pa.int64(), False),
    "price": (pa.float64(), True),
    "weight": (pa.float64(), True),
    "active": (pa.bool_(), False),
    "seen": (pa.timestamp("us", tz="UTC"), True),
    "born": (pa.date32(), True),
    "tags": (JSON, True),
    "dims": (JSON, True),
    "either": (JSON, True),
    "free": (JSON, True),
}


# --- reading back -----------------------------------------------------------------------


async def columnar(client: httpx.AsyncClient, ds: str, fmt: str, **params: str) -> pa.Table:
    response = await client.get(f"/v1/datasets/{ds}/export", params={"format": fmt, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == export.MEDIA_TYPES[fmt]  # type: ignore[index]
    assert response.headers["x-entrepot-seq"].isdigit()
    return read(response.content, fmt)


def read(content: bytes, fmt: str) -> pa.Table:
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(content))
    return pa.ipc.open_stream(content).read_all()


async def ndjson_export(client: httpx.AsyncClient, ds: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/datasets/{ds}/export", params={"envelope": "true"})
    assert response.status_code == 200, response.text
    return [jsonbody.loads_trusted(line) for line in response.text.split("\n") if line]


def cell_of(kind: pa.DataType, value: Any) -> Any:
    """What a column of type ``kind`` holds for the JSON ``value`` (the documented mapping)."""
    if value is None:
        return None
    if kind == JSON:
        return canonical(value)
    if pa.types.is_timestamp(kind):
        return datetime.datetime.fromisoformat(value.upper()).astimezone(UTC)
    if pa.types.is_date32(kind):
        return datetime.date.fromisoformat(value)
    if pa.types.is_floating(kind):
        return float(value)  # a JSON number read as a double (the nearest one)
    if pa.types.is_string(kind) and not isinstance(value, str):
        return jsonbody.dumps(value)  # a column demoted to text: the number's decimal text
    return value


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def normalised(kind: pa.DataType, cell: Any) -> Any:
    """A cell as read, comparable with :func:`cell_of` (JSON text parsed again)."""
    if cell is None:
        return None
    if kind == JSON:
        return canonical(jsonbody.loads_trusted(cell))
    return cell


def assert_equals_ndjson(
    table: pa.Table, lines: list[dict[str, Any]], columns: dict[str, str] | None = None
) -> None:
    """Every row equals its NDJSON line: ``_id``, ``_version``, then each column's
    property (``columns`` maps a column to its property where the names differ)."""
    assert table.num_rows == len(lines)
    named = columns or {}
    for row, line in zip(table.to_pylist(), lines, strict=True):
        assert row[named.get("id", "_id")] == line["id"]
        assert row[named.get("version", "_version")] == line["version"]
        for field in table.schema:
            if field.name in (named.get("id", "_id"), named.get("version", "_version")):
                continue
            prop = named.get(field.name, field.name)
            if prop == "_extra":
                continue
            expected = cell_of(field.type, line["data"].get(prop))
            assert normalised(field.type, row[field.name]) == expected, (field.name, row, line)


def types_of(table: pa.Table) -> dict[str, tuple[pa.DataType, bool]]:
    return {f.name: (f.type, f.nullable) for f in table.schema}


async def typed_dataset(client: httpx.AsyncClient, records: list[dict[str, Any]]) -> str:
    ds: str = (await make_dataset(client, schema=TYPED_SCHEMA, primary_key="sku"))["name"]
    loaded = await post_import(client, ds, ndjson_exact(records))
    assert loaded.json()["inserted"] == len(records), loaded.text
    return ds


# --- the mapping --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_columns_are_typed_from_the_schema(client: httpx.AsyncClient, fmt: str) -> None:
    ds = await typed_dataset(client, TYPED_RECORDS)
    table = await columnar(client, ds, fmt)
    assert types_of(table) == EXPECTED_TYPES
    assert_equals_ndjson(table, await ndjson_export(client, ds))
    seen = table.column("seen").to_pylist()
    assert seen[1] == datetime.datetime(2024, 2, 29, 23, 30, tzinfo=UTC)  # +02:00 applied
    assert table.column("qty").to_pylist()[:2] == [2**63 - 1, -(2**63)]
    metadata = table.schema.metadata
    assert metadata[b"entrepot.dataset"] == ds.encode()
    assert json.loads(metadata[b"entrepot.schema"]) == TYPED_SCHEMA


async def test_parquet_and_arrow_hold_the_same_table(client: httpx.AsyncClient) -> None:
    ds = await typed_dataset(client, TYPED_RECORDS)
    assert (await columnar(client, ds, "parquet")).equals(await columnar(client, ds, "arrow"))


@pytest.mark.parametrize("fmt", FORMATS)
async def test_the_rich_dataset_reads_back_equal_to_ndjson(
    client: httpx.AsyncClient, fmt: str
) -> None:
    ds = await rich_dataset(client)
    await post_import(client, ds, ndjson(*RECORDS))
    table = await columnar(client, ds, fmt)
    assert_equals_ndjson(table, await ndjson_export(client, ds))
    # count holds 12345678901234567890: beyond int64, so its column is the exact digits.
    assert table.schema.field("count").type == pa.string()
    assert table.column("count").to_pylist()[0] == "12345678901234567890"
    assert table.column("label").to_pylist()[0] == "Zoë, 東京 🚀"
    assert table.schema.field("_extra").type == JSON  # the schema admits undeclared keys


async def test_pandas_and_duckdb_read_what_pyarrow_reads(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    ds = await typed_dataset(client, TYPED_RECORDS)
    response = await client.get(f"/v1/datasets/{ds}/export", params={"format": "parquet"})
    path = tmp_path / "typed.parquet"
    path.write_bytes(response.content)
    expected = pq.read_table(path).to_pylist()

    frame = pd.read_parquet(path)
    assert str(frame["qty"].dtype) == "int64"
    assert str(frame["seen"].dtype) == "datetime64[us, UTC]"
    assert [{k: pandas_value(v) for k, v in row.items()} for row in frame.to_dict("records")] == [
        {k: pandas_value(v) for k, v in row.items()} for row in expected
    ]

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    described = {
        row[0]: row[1]
        for row in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    }
    assert described["qty"] == "BIGINT"
    assert described["seen"] == "TIMESTAMP WITH TIME ZONE"
    assert described["born"] == "DATE"
    assert described["tags"] == "JSON"
    rows = con.execute("SELECT * FROM read_parquet(?) ORDER BY _id", [str(path)]).fetchall()
    assert [dict(zip(described, row, strict=True)) for row in rows] == expected
    tags = con.execute(
        "SELECT tags->>'$[1]' FROM read_parquet(?) WHERE sku = 'a'", [str(path)]
    ).fetchall()
    assert tags == [("ü",)]

    stream = await client.get(f"/v1/datasets/{ds}/export", params={"format": "arrow"})
    con.register("stream", pa.ipc.open_stream(stream.content).read_all())
    from_arrow = con.execute("SELECT * FROM stream ORDER BY _id").fetchall()
    assert [dict(zip(described, row, strict=True)) for row in from_arrow] == expected


def pandas_value(value: Any) -> Any:
    """pandas' cell as a plain value: its missing markers as None, numpy scalars unwrapped."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


# --- values a column cannot hold exactly ---------------------------------------------


@pytest.mark.parametrize(
    ("prop", "value", "kept"),
    [
        ("qty", 9223372036854775808, "qty holds int64, and 2**63 is beyond it"),
        ("qty", -9223372036854775809, "below int64"),
        ("price", 12345678901234567890, "no double equals it"),
        ("seen", "2024-01-01T00:00:00.1234567Z", "nanoseconds"),
        ("seen", "0000-01-01T00:00:00Z", "year 0"),
        ("born", "0000-12-31", "year 0"),
    ],
)
async def test_a_value_the_type_cannot_hold_makes_its_column_text(
    client: httpx.AsyncClient, prop: str, value: Any, kept: str
) -> None:
    odd = {**TYPED_RECORDS[2], "sku": "z", prop: value}
    ds = await typed_dataset(client, [*TYPED_RECORDS, odd])
    for fmt in FORMATS:
        table = await columnar(client, ds, fmt)
        assert table.schema.field(prop).type == pa.string(), kept
        others = {k: v for k, v in types_of(table).items() if k != prop}
        assert others == {k: v for k, v in EXPECTED_TYPES.items() if k != prop}
        assert_equals_ndjson(table, await ndjson_export(client, ds))
        assert table.column(prop).to_pylist()[-1] == (
            value if isinstance(value, str) else str(value)
        )


async def test_exact_values_at_the_edges_keep_their_types(client: httpx.AsyncClient) -> None:
    edge = {
        **TYPED_RECORDS[2],
        "sku": "e",
        "price": 9007199254740993.0,  # parsed as a double: stored as that double's text
        "seen": "9999-12-31T23:59:59.999999000+00:30",  # trailing zeros are exact
        "born": "9999-12-31",
    }
    ds = await typed_dataset(client, [*TYPED_RECORDS, edge])
    table = await columnar(client, ds, "parquet")
    assert types_of(table) == EXPECTED_TYPES
    assert_equals_ndjson(table, await ndjson_export(client, ds))


# --- narrowing ----------------------------------------------------------------------


async def test_a_narrowed_grant_sees_its_fields_and_rows_only(client: httpx.AsyncClient) -> None:
    provider = (await make_org(client))["name"]
    ds = (
        await make_dataset(
            client,
            provider,
            schema=TYPED_SCHEMA,
            primary_key="sku",
            visibility="restricted",
        )
    )["name"]
    rows = [
        *TYPED_RECORDS,
        # Hidden rows (active false is filtered out): a value that would demote qty and
        # seen must not change the grantee's column types.
        {"sku": "hidden", "qty": 2**70, "active": False, "seen": "0000-01-01T00:00:00Z"},
    ]
    await post_import(client, ds, ndjson_exact(rows))
    admin = await make_app(client, provider, scopes=["datasets:read", "admin"])
    admin_key = (await make_key(client, admin["id"]))["key"]
    app = await make_app(client, (await make_org(client))["name"])
    key = (await make_key(client, app["id"]))["key"]
    visible = ["sku", "qty", "seen", "tags"]
    await granted(
        client, ds, app["id"], key, admin_key, fields=visible, row_filter={"active": True}
    )
    grantee = {"Authorization": f"Bearer {key}"}

    lines = await ndjson_export_as(client, ds, grantee)
    assert [line["id"] for line in lines] == ["a", "c"]
    for fmt in FORMATS:
        response = await client.get(
            f"/v1/datasets/{ds}/export", params={"format": fmt}, headers=grantee
        )
        assert response.status_code == 200, response.text
        assert b"price" not in response.content
        assert b"hidden" not in response.content
        table = read(response.content, fmt)
        assert table.column_names == ["_id", "_version", *visible]  # no _extra either
        assert types_of(table)["qty"] == (pa.int64(), False)
        assert types_of(table)["seen"] == (pa.timestamp("us", tz="UTC"), True)
        assert_equals_ndjson(table, lines)
        schema = json.loads(table.schema.metadata[b"entrepot.schema"])
        assert list(schema["properties"]) == visible


async def ndjson_export_as(
    client: httpx.AsyncClient, ds: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/datasets/{ds}/export", params={"envelope": "true"}, headers=headers
    )
    assert response.status_code == 200, response.text
    return [jsonbody.loads_trusted(line) for line in response.text.split("\n") if line]


# --- shapes -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_empty_dataset_is_a_valid_file_with_its_columns(
    client: httpx.AsyncClient, fmt: str
) -> None:
    ds: str = (await make_dataset(client, schema=TYPED_SCHEMA, primary_key="sku"))["name"]
    table = await columnar(client, ds, fmt)
    assert table.num_rows == 0
    assert types_of(table) == EXPECTED_TYPES


async def test_rows_are_sent_a_row_group_or_a_batch_at_a_time(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "FETCH_ROWS", 7)
    monkeypatch.setattr(export, "ROW_GROUP_ROWS", 20)
    ds = await typed_dataset(
        client, [{"sku": f"s{n:03}", "qty": n, "active": n % 2 == 0} for n in range(95)]
    )
    response = await client.get(f"/v1/datasets/{ds}/export", params={"format": "parquet"})
    groups = pq.ParquetFile(io.BytesIO(response.content)).metadata
    # 21, 21, 21, 21 and 11 rows: a group closes at the first page reaching 20 rows.
    assert [groups.row_group(i).num_rows for i in range(groups.num_row_groups)] == [
        21,
        21,
        21,
        21,
        11,
    ]
    table = pq.read_table(io.BytesIO(response.content))
    assert_equals_ndjson(table, await ndjson_export(client, ds))
    stream = await client.get(f"/v1/datasets/{ds}/export", params={"format": "arrow"})
    batches = list(pa.ipc.open_stream(stream.content))
    assert [b.num_rows for b in batches] == [7] * 13 + [4]  # a batch for each page


async def test_envelope_names_never_hide_a_property(client: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {"_id": {"type": "string"}, "_version": {"type": "integer"}},
        "required": ["_id"],
    }
    ds = (await make_dataset(client, schema=schema, primary_key="_id"))["name"]
    await post_import(client, ds, ndjson({"_id": "k", "_version": 5, "more": {"x": 1}}))
    table = await columnar(client, ds, "parquet")
    assert table.column_names == ["__id", "__version", "_id", "_version", "_extra"]
    assert table.to_pylist() == [
        {"__id": "k", "__version": 1, "_id": "k", "_version": 5, "_extra": '{"more": {"x": 1}}'}
    ]
    named = {"id": "__id", "version": "__version"}
    assert_equals_ndjson(table, await ndjson_export(client, ds), named)


@pytest.mark.parametrize(
    "query", ["format=parquet&envelope=true", "format=arrow&csv=spreadsheet", "format=feather"]
)
async def test_options_of_other_formats_are_400(client: httpx.AsyncClient, query: str) -> None:
    ds: str = (await make_dataset(client, schema=TYPED_SCHEMA, primary_key="sku"))["name"]
    response = await client.get(f"/v1/datasets/{ds}/export?{query}")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"


# --- generated schemas and records ---------------------------------------------------

KINDS: dict[str, tuple[dict[str, Any], st.SearchStrategy[Any]]] = {
    "integer": ({"type": "integer"}, st.integers(-(2**64), 2**64)),
    "number": ({"type": "number"}, st.floats(allow_nan=False, allow_infinity=False)),
    "boolean": ({"type": "boolean"}, st.booleans()),
    "string": (
        {"type": "string"},
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
    ),
    "date-time": (
        {"type": "string", "format": "date-time"},
        st.datetimes(
            min_value=datetime.datetime(1, 1, 2), max_value=datetime.datetime(9999, 12, 30)
        ).map(lambda d: d.isoformat() + "Z"),
    ),
    "date": ({"type": "string", "format": "date"}, st.dates().map(datetime.date.isoformat)),
    "nullable": ({"type": ["integer", "null"]}, st.one_of(st.none(), st.integers(-99, 99))),
    "array": ({"type": "array"}, st.lists(st.integers(-(2**70), 2**70), max_size=3)),
    "untyped": ({}, st.recursive(st.none() | st.booleans() | st.integers(), st.lists)),
}


@st.composite
def datasets(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=5))
    names = [f"p{i}_{kind}" for i, kind in enumerate(kinds)]
    required = [n for n in names if draw(st.booleans())]
    schema = {
        "type": "object",
        "properties": {
            "k": {"type": "string"},
            **{n: KINDS[k][0] for n, k in zip(names, kinds, strict=True)},
        },
        "required": ["k", *required],
        "additionalProperties": False,
    }
    records = []
    for index in range(draw(st.integers(0, 6))):
        record: dict[str, Any] = {"k": f"r{index}"}
        for name, kind in zip(names, kinds, strict=True):
            if name in required or draw(st.booleans()):
                record[name] = draw(KINDS[kind][1])
        records.append(record)
    return schema, records


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=datasets(), fmt=st.sampled_from(FORMATS))
async def test_generated_datasets_read_back_equal_to_ndjson(
    client: httpx.AsyncClient, generated: tuple[dict[str, Any], list[dict[str, Any]]], fmt: str
) -> None:
    schema, records = generated
    ds = (await make_dataset(client, schema=schema, primary_key="k"))["name"]
    if records:
        loaded = await post_import(client, ds, ndjson_exact(records))
        assert loaded.json()["inserted"] == len(records), loaded.text
    table = await columnar(client, ds, fmt)
    assert table.column_names == ["_id", "_version", *schema["properties"]]
    for name, sub in schema["properties"].items():
        declared = sub.get("type")
        may_be_null = declared is None or "null" in declared
        assert table.schema.field(name).nullable == (name not in schema["required"] or may_be_null)
    assert_equals_ndjson(table, await ndjson_export(client, ds))


def ndjson_exact(records: list[dict[str, Any]]) -> str:
    """NDJSON with integers of any size written exactly (orjson stops at 64 bits)."""
    return "".join(jsonbody.dumps(r) + "\n" for r in records)
