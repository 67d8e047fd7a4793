"""Records as typed columns (Apache Arrow) for the Parquet and Arrow IPC exports.

Each visible top-level property becomes one column, typed from the dataset's
JSON Schema, so analysts get numbers, booleans and timestamps rather than text:

==================================  ===========================================
schema (``null`` aside)             column
==================================  ===========================================
``integer``                         int64
``number`` (or integer and number)  float64 (IEEE double, as every write parses it)
``boolean``                         bool
``string``                          string (UTF-8)
string, ``format: date-time``       timestamp[us, UTC] (the instant; offsets
                                    are applied, the offset text is not kept)
string, ``format: date``            date32
object, array, several types, none  JSON text (Arrow's ``arrow.json``, Parquet's
                                    JSON logical type, DuckDB's JSON)
==================================  ===========================================

Some stored values fit no such column exactly: an integer beyond int64, a
number no double reads back as (an integer literal such as 12345678901234567890
in a number property), a date-time with more than microsecond precision or in
year 0. Rather than corrupt them or refuse the export, the checks of
:meth:`Layout.survey_checks` ask (``query.build_survey_sql``), in the export's
snapshot and over the rows it exports, whether every visible value fits; a
column with one that does not is exported as text instead (the decimal digits,
or the date-time as written). So a column's type depends on the data only in
those cases, and never on rows or fields the reader cannot see.

A column is nullable unless its property is required and does not admit null;
an absent field and a JSON null are both null. ``_id`` (the record id) and
``_version`` come first, as in the NDJSON envelope; properties follow in the
schema's declared order; when the schema admits undeclared keys and the reader
sees whole records, ``_extra`` holds them as a JSON object (null when none). A
property already named so pushes the column to ``__id`` (and so on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from entrepot.schema.record_schema import RecordSchema

Kind = Literal["int64", "float64", "bool", "string", "timestamp", "date", "json", "text"]
Check = Literal["int64", "float64", "timestamp", "date"]

ARROW_TYPES: dict[Kind, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "json": pa.json_(pa.string()),
    "text": pa.string(),  # a typed column demoted by the survey: values as text
}
# What the survey must confirm before a column keeps its type.
CHECKED: dict[Kind, Check] = {
    "int64": "int64",
    "float64": "float64",
    "timestamp": "timestamp",
    "date": "date",
}
_SCALARS: dict[str, Kind] = {"integer": "int64", "number": "float64", "boolean": "bool"}
_FORMATS: dict[str, Kind] = {"date-time": "timestamp", "date": "date"}


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # the column's name in the file
    prop: str  # the record property it holds
    kind: Kind
    nullable: bool

    @property
    def field(self) -> pa.Field[Any]:
        return pa.field(self.name, ARROW_TYPES[self.kind], nullable=self.nullable)


@dataclass(frozen=True)
class Layout:
    """The columns of one export: the envelope's, the properties', maybe ``_extra``."""

    id_name: str
    version_name: str
    columns: tuple[Column, ...]
    extra_name: str | None  # undeclared keys, for readers of whole open-schema records

    def schema(self, metadata: dict[bytes | str, bytes | str]) -> pa.Schema:
        fields: list[pa.Field[Any]] = [
            pa.field(self.id_name, pa.string(), nullable=False),
            pa.field(self.version_name, pa.int64(), nullable=False),
            *(c.field for c in self.columns),
        ]
        if self.extra_name is not None:
            fields.append(pa.field(self.extra_name, ARROW_TYPES["json"]))
        return pa.schema(fields, metadata=metadata)

    def selected(self) -> list[tuple[str, Kind]]:
        """Each column's ``(property, kind)``, in order, for the export's query."""
        return [(c.prop, c.kind) for c in self.columns]

    def undeclared_beyond(self) -> list[str] | None:
        """The declared properties, when ``_extra`` holds the record's other keys."""
        return None if self.extra_name is None else [c.prop for c in self.columns]

    def survey_checks(self) -> list[tuple[str, Check]]:
        """The (property, check) pairs the snapshot must answer, in column order."""
        return [(c.prop, CHECKED[c.kind]) for c in self.columns if c.kind in CHECKED]

    def surveyed(self, fits: Sequence[bool]) -> Layout:
        """The layout once the survey said which checked columns keep their type."""
        answers = iter(fits)
        columns = tuple(
            c if c.kind not in CHECKED or next(answers) else _as_text(c) for c in self.columns
        )
        return Layout(self.id_name, self.version_name, columns, self.extra_name)


def _as_text(column: Column) -> Column:
    return Column(column.name, column.prop, "text", column.nullable)


def _free_name(base: str, taken: set[str]) -> str:
    name = base
    while name in taken:
        name = "_" + name
    taken.add(name)
    return name


def kind_of(sub: Any, types: frozenset[str] | None) -> Kind:
    """A property's column kind from its subschema and declared types."""
    declared = (types or frozenset()) - {"null"}
    if declared == {"integer", "number"}:
        declared = frozenset({"number"})
    if len(declared) != 1:
        return "json"
    (only,) = declared
    if only == "string":
        form = sub.get("format") if isinstance(sub, dict) else None
        return _FORMATS.get(form, "string") if isinstance(form, str) else "string"
    return _SCALARS.get(only, "json")


def layout(schema: RecordSchema, whole_records: bool) -> Layout:
    """The columns for a reader who sees ``schema`` (narrowed or not);
    ``whole_records`` when no field is hidden from them."""
    properties = schema.document.get("properties") or {}
    required = set(schema.document.get("required") or ())
    taken = set(schema.property_types)
    id_name = _free_name("_id", taken)
    version_name = _free_name("_version", taken)
    columns = []
    for prop, types in schema.property_types.items():
        nullable = prop not in required or types is None or "null" in types
        columns.append(Column(prop, prop, kind_of(properties.get(prop), types), nullable))
    extra = _free_name("_extra", taken) if whole_records and not schema.key_order.closed else None
    return Layout(id_name, version_name, tuple(columns), extra)


# --- values -------------------------------------------------------------------------
#
# PostgreSQL computes each column's values (query.build_columnar_sql): integers,
# doubles, booleans and text as asyncpg decodes them, timestamps as microseconds and
# dates as days since the epoch, JSON as its text; Arrow takes each list in C.


def record_batch(shape: Layout, schema: pa.Schema, rows: Sequence[Any]) -> pa.RecordBatch:
    """Rows of ``query.build_columnar_sql`` for ``shape`` as one record batch."""
    arrays: list[pa.Array[Any]] = [
        pa.array([row[index] for row in rows], type=field.type)
        for index, field in enumerate(schema)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
