"""Typed columns for a MySQL mirror, derived from the dataset's JSON Schema.

Each top-level property becomes one column beside ``id``, ``version`` and ``data``
(which keeps the whole record, exactly), typed from the property's schema:

============================  =============================================
property schema               column
============================  =============================================
integer, bounds within int64  BIGINT
integer, unbounded            DECIMAL(65,0) (exact up to 65 digits)
number                        DOUBLE
boolean                       BOOLEAN
string, format date-time      DATETIME(6), the instant in UTC
string, maxLength <= 255      VARCHAR(maxLength) (or the longest enum value)
string, longer or unbounded   TEXT, MEDIUMTEXT or LONGTEXT by maxLength
object, array, several types  JSON text (LONGTEXT checked by JSON_VALID)
or none
============================  =============================================

A property named like one of the agent's own columns gets a trailing ``_``
(``version`` -> ``version_``). What MySQL cannot hold (a name it refuses, two
names it takes for one, more columns than InnoDB allows) is refused by
:meth:`Layout.of` with a :class:`Unholdable` naming the property, before
anything is written; the row-size rules, which depend on the server's page
size and row format, are left to the server (the target probes a layout with a
temporary table first).

Converting a record (:meth:`Layout.values`): a value of the JSON type its column
was made for is stored; one the type cannot represent (an integer of more than 65
digits, a date-time outside DATETIME's years 1000-9999 or a leap second) is NULL
there, ``data`` having it exactly; a value of another JSON type, or a string
longer than its VARCHAR, cannot be valid for the schema the columns came from,
so it raises :class:`SchemaDrift`: the schema has changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from entrepot import jsonbody
from entrepot.sync.base import CannotMirror, SchemaDrift

OWN_COLUMNS = ("id", "version", "data")
MAX_NAME = 64  # characters in a MySQL column name
MAX_COLUMNS = 1017  # InnoDB's limit per table, the agent's own three included
MAX_ROW_BYTES = 65_535  # MySQL's limit on a row, TEXT and BLOB counting a few bytes each
MAX_VARCHAR = 255  # characters: longer strings go to TEXT types, off the row
INT64 = (-(2**63), 2**63 - 1)
DECIMAL_LIMIT = 10**65
TEXT_TYPES = ((16_383, "TEXT"), (4_194_303, "MEDIUMTEXT"))  # characters of utf8mb4
FIXED_BYTES = {"BIGINT": 8, "DOUBLE": 8, "BOOLEAN": 1, "DATETIME(6)": 8, "DECIMAL(65,0)": 29}
JSON_TEXT = "LONGTEXT"


class Unholdable(CannotMirror):
    """A schema MySQL cannot hold as typed columns; the message names the property."""


@dataclass(frozen=True)
class Column:
    prop: str  # the record's key
    name: str  # the column's
    type: str  # as declared: BIGINT, VARCHAR(40), LONGTEXT (JSON)...
    kind: str  # integer, decimal, number, boolean, string, datetime, json
    length: int | None = None  # a string's maxLength, when the column has one

    def declaration(self) -> str:
        name = quote(self.name)
        if self.kind == "json":
            return f"{name} {JSON_TEXT} COLLATE utf8mb4_bin CHECK (JSON_VALID({name}))"
        return f"{name} {self.type}"

    def row_bytes(self) -> int:
        """What the column counts toward MySQL's 65,535-byte row (NULL bits aside)."""
        if self.type in FIXED_BYTES:
            return FIXED_BYTES[self.type]
        if self.type.startswith("VARCHAR"):
            size = 4 * (self.length or 0)
            return size + (1 if size < 256 else 2)
        return 12  # TEXT types: a length and a pointer

    def value(self, record_id: str, data: dict[str, Any]) -> Any:
        """The column's value for a record; raises SchemaDrift for one it was not made for."""
        value = data.get(self.prop)
        if value is None:
            return None
        kind = self.kind
        if kind == "json":
            return jsonbody.dumps(value)
        if kind in ("integer", "decimal"):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise self._drift(record_id, value)
            if kind == "integer" and not INT64[0] <= value <= INT64[1]:
                raise self._drift(record_id, value)
            return value if abs(value) < DECIMAL_LIMIT else None
        if kind == "number":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise self._drift(record_id, value)
            try:
                return float(value)
            except OverflowError:  # an integer beyond a double's range
                return None
        if kind == "boolean":
            if not isinstance(value, bool):
                raise self._drift(record_id, value)
            return int(value)
        if not isinstance(value, str):
            raise self._drift(record_id, value)
        if kind == "datetime":
            return utc_datetime(value)
        if self.length is not None and len(value) > self.length:
            raise self._drift(record_id, value)
        return value

    def _drift(self, record_id: str, value: Any) -> SchemaDrift:
        shown = json.dumps(value, ensure_ascii=False)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return SchemaDrift(
            f"record {record_id!r}: {self.prop!r} is {shown}, which its column "
            f"{self.name} {self.type} was not made for"
        )


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def utc_datetime(text: str) -> datetime | None:
    """An RFC 3339 date-time as a naive UTC datetime for DATETIME(6); None when the
    column cannot hold it (a leap second, years outside 1000-9999 once in UTC)."""
    try:
        parsed = datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        moment = parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        return None
    return moment if 1000 <= moment.year <= 9999 else None


@dataclass(frozen=True)
class Layout:
    """The typed columns of one mirrored table, in the schema's declared order."""

    columns: tuple[Column, ...]

    @classmethod
    def of(cls, schema: dict[str, Any]) -> Layout:
        """The columns for ``schema``; Unholdable if MySQL cannot hold them."""
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            properties = {}
        columns = tuple(_column(prop, sub) for prop, sub in properties.items())
        layout = cls(columns)
        layout._check()
        return layout

    def fingerprint(self) -> str:
        """What identifies the table's shape: equal fingerprints, same columns."""
        return jsonbody.dumps([[c.prop, c.name, c.type] for c in self.columns])

    def values(self, record_id: str, data: Any) -> list[Any]:
        if not isinstance(data, dict):
            raise SchemaDrift(f"record {record_id!r} is not an object")
        return [column.value(record_id, data) for column in self.columns]

    def largest(self, count: int = 3) -> str:
        """The columns that weigh most in a row, for a row-size refusal."""
        ranked = sorted(self.columns, key=lambda c: -c.row_bytes())[:count]
        return ", ".join(f"{c.prop!r} ({c.type})" for c in ranked)

    def _check(self) -> None:
        seen: dict[str, Column] = {}
        for column in self.columns:
            _check_name(column)
            other = seen.setdefault(column.name.lower(), column)  # MySQL ignores case there
            if other is not column:
                raise Unholdable(
                    f"properties {other.prop!r} and {column.prop!r} would be columns "
                    f"{other.name!r} and {column.name!r}, which MySQL takes for one "
                    "(column names ignore case)"
                )
        total = len(self.columns) + len(OWN_COLUMNS)
        if total > MAX_COLUMNS:
            raise Unholdable(
                f"{len(self.columns)} properties: an InnoDB table holds at most {MAX_COLUMNS} "
                f"columns, {len(OWN_COLUMNS)} of them the agent's (the last property that "
                f"fits is {self.columns[MAX_COLUMNS - len(OWN_COLUMNS) - 1].prop!r})"
            )
        own = 1022 + 8 + 12 + (total + 7) // 8  # id VARCHAR(255), version, data; NULL bits
        size = own + sum(c.row_bytes() for c in self.columns)
        if size > MAX_ROW_BYTES:
            raise Unholdable(
                f"a row would be {size:,} bytes, over MySQL's {MAX_ROW_BYTES:,}; the largest "
                f"columns are {self.largest()}"
            )


def _check_name(column: Column) -> None:
    name, prop = column.name, column.prop
    why = None
    if not name.strip():
        why = "MySQL refuses an empty or blank column name"
    elif len(name) > MAX_NAME:
        why = f"its column name would be {len(name)} characters, MySQL allows {MAX_NAME}"
    elif name.endswith(" "):
        why = "MySQL refuses a column name ending with a space"
    elif "\x00" in name:
        why = "MySQL refuses a NUL character in a column name"
    elif any(ord(ch) > 0xFFFF for ch in name):
        why = "MySQL column names cannot hold characters beyond U+FFFF (such as emoji)"
    if why:
        raise Unholdable(f"property {prop!r}: {why}")


def _column(prop: str, sub: Any) -> Column:
    name = prop + "_" if prop.lower() in OWN_COLUMNS else prop
    types: set[str] = set()
    if isinstance(sub, dict):
        declared = sub.get("type")
        if isinstance(declared, str):
            types = {declared}
        elif isinstance(declared, list):
            types = {str(t) for t in declared}
    types.discard("null")
    if types == {"integer"}:
        low, high = _bounds(sub)
        if low is not None and high is not None and INT64[0] <= low and high <= INT64[1]:
            return Column(prop, name, "BIGINT", "integer")
        return Column(prop, name, "DECIMAL(65,0)", "decimal")
    if types in ({"number"}, {"number", "integer"}):
        return Column(prop, name, "DOUBLE", "number")
    if types == {"boolean"}:
        return Column(prop, name, "BOOLEAN", "boolean")
    if types == {"string"}:
        assert isinstance(sub, dict)
        if sub.get("format") == "date-time":
            return Column(prop, name, "DATETIME(6)", "datetime")
        length = _max_length(sub)
        if length is not None and length <= MAX_VARCHAR:
            return Column(prop, name, f"VARCHAR({max(length, 1)})", "string", length)
        for limit, text_type in TEXT_TYPES:
            if length is not None and length <= limit:
                return Column(prop, name, text_type, "string", length)
        return Column(prop, name, "LONGTEXT", "string", length)
    return Column(prop, name, "JSON", "json")


def _bounds(sub: dict[str, Any]) -> tuple[float | None, float | None]:
    def number(key: str) -> float | None:
        value = sub.get(key)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    low = [v for v in (number("minimum"), number("exclusiveMinimum")) if v is not None]
    high = [v for v in (number("maximum"), number("exclusiveMaximum")) if v is not None]
    return (max(low) if low else None, min(high) if high else None)


def _max_length(sub: dict[str, Any]) -> int | None:
    length = sub.get("maxLength")
    if isinstance(length, int) and not isinstance(length, bool):
        return length
    enum = sub.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        return max(len(v) for v in enum)
    return None
