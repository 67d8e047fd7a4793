"""CSV cells to JSON values and back, guided by the dataset schema.

A cell is read as the first of the property's declared types it fits
(null, boolean, integer, number, object/array as JSON), else as a string.
Rendering is the inverse with one twist: a string that would read back as
something else (``""``, ``"true"``, ``"12"`` in an untyped column, or text
starting with a double quote) is written as a JSON string literal, which the
reader decodes first. Plain strings stay plain, so ordinary CSV stays
readable, and every stored record survives export then import unchanged.

The ``spreadsheet`` style gives up that promise for files people open in
Excel, LibreOffice or Google Sheets, which run a cell starting with ``=``,
``+``, ``-``, ``@``, tab or carriage return as a formula (CSV injection):
a string value starting so is written after a single quote, which those
programs take as "this is text" (OWASP's advice). Numbers stay as they are:
a JSON number such as ``-5`` is no formula, and only strings carry text an
attacker chose.

The splitter is our own RFC 4180 reader rather than the ``csv`` module: the
latter caps fields with a process-wide limit and cannot tell which physical
line a record started on, and both matter for bulk imports.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from entrepot import jsonbody
from entrepot.problems import BadRequest
from entrepot.records.lines import Line
from entrepot.schema.record_schema import RecordSchema

ANY_TYPE = frozenset({"null", "boolean", "integer", "number", "string", "object", "array"})
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_MUST_QUOTE = re.compile(r'[",\r\n]')
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

CsvStyle = Literal["exact", "spreadsheet"]


class CsvSyntaxError(ValueError):
    """A record whose quoting breaks RFC 4180."""


class CellError(ValueError):
    """A cell that fits none of its property's types."""


@dataclass(frozen=True, slots=True)
class CsvRecord:
    """A logical record: its first physical line, and its text or why it has none."""

    line: int
    text: str
    error: str | None = None


class RecordAssembler:
    """Joins physical lines into logical records.

    RFC 4180 doubles quotes inside quoted fields, so a record ends on the
    first line where the quotes seen since it began are even. Records longer
    than ``limit`` bytes are dropped while their quotes are still counted.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: list[bytes] = []
        self._start = 0
        self._size = 0
        self._quoted = False
        self._oversized = False

    def feed(self, line: Line) -> CsvRecord | None:
        if self._start == 0:
            self._start = line.number
        if line.raw is None:  # its quotes are unknown: resynchronise on the next line
            self._oversized, self._quoted = True, False
            return self._complete()
        if line.raw.count(b'"') % 2:
            self._quoted = not self._quoted
        self._size += len(line.raw)
        if self._size > self.limit:
            self._oversized = True
            self._parts.clear()
        elif not self._oversized:
            self._parts.append(line.raw)
        return None if self._quoted else self._complete()

    def finish(self) -> CsvRecord | None:
        """The record left open at the end of the body, if any."""
        if self._start == 0:
            return None
        unterminated = self._quoted and not self._oversized
        record = self._complete()
        if unterminated:
            return CsvRecord(record.line, "", "a quoted field is never closed")
        return record

    def _complete(self) -> CsvRecord:
        start, raw, oversized = self._start, b"".join(self._parts), self._oversized
        self._parts.clear()
        self._start, self._size, self._quoted, self._oversized = 0, 0, False, False
        if oversized:
            return CsvRecord(start, "", f"the record is longer than {self.limit} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return CsvRecord(start, "", "the record is not valid UTF-8")
        if text.endswith("\n"):
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
        return CsvRecord(start, text)


def columns(schema: RecordSchema) -> list[str]:
    """The schema's top-level properties in the order the catalog stores them."""
    return list(schema.property_types)


def split_record(text: str) -> list[str]:
    """One logical record (terminator removed) into its fields."""
    fields: list[str] = []
    pos, size = 0, len(text)
    while True:
        if pos < size and text[pos] == '"':
            parts: list[str] = []
            pos += 1
            while True:
                close = text.find('"', pos)
                if close < 0:
                    raise CsvSyntaxError("a quoted field is never closed")
                parts.append(text[pos:close])
                if text.startswith('"', close + 1):
                    parts.append('"')
                    pos = close + 2
                    continue
                pos = close + 1
                break
            if pos < size and text[pos] != ",":
                raise CsvSyntaxError("a closing quote must end its field")
            fields.append("".join(parts))
        else:
            comma = text.find(",", pos)
            end = size if comma < 0 else comma
            field = text[pos:end]
            if '"' in field:
                raise CsvSyntaxError("a quote inside an unquoted field")
            fields.append(field)
            pos = end
        if pos >= size:
            return fields
        pos += 1  # the comma
        if pos == size:
            fields.append("")
            return fields


def check_header(names: list[str], schema: RecordSchema) -> list[str]:
    """The header must name schema properties, each once; a 400 for the file otherwise."""
    errors = [
        {"path": f"/{index}", "message": f"{name!r} is not a property of the schema"}
        for index, name in enumerate(names)
        if not schema.has_property(name)
    ]
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            errors.append({"path": f"/{index}", "message": f"{name!r} appears twice"})
        seen.add(name)
    if errors:
        raise BadRequest("The CSV header must name properties of the schema.", errors=errors)
    return names


def _pointer(name: str) -> str:
    return "/" + name.replace("~", "~0").replace("/", "~1")


def parse_cell(text: str, types: frozenset[str] | None) -> Any:
    """The JSON value a non-empty cell stands for; CellError if it fits no type."""
    allowed = types or ANY_TYPE
    if "string" in allowed and text.startswith('"'):
        try:
            decoded = jsonbody.loads(text)
        except jsonbody.JsonBodyError:
            decoded = None
        if isinstance(decoded, str):
            return decoded
    if "null" in allowed and text == "null":
        return None
    if "boolean" in allowed and text in ("true", "false"):
        return text == "true"
    if not allowed.isdisjoint(("integer", "number")):
        number = _number(text, integral="number" not in allowed)
        if number is not None:
            return number
    if text[:1] in ("{", "[") and not allowed.isdisjoint(("object", "array")):
        try:
            value = jsonbody.loads(text)
        except jsonbody.JsonBodyError as exc:
            if "string" not in allowed:
                raise CellError(exc.message) from None
        else:
            if ("object" in allowed and isinstance(value, dict)) or (
                "array" in allowed and isinstance(value, list)
            ):
                return value
    if "string" in allowed:
        jsonbody.check_storable(text)
        return text
    shown = text if len(text) <= 40 else text[:37] + "..."
    raise CellError(f"expected {' or '.join(sorted(allowed))}, got {shown!r}")


def _number(text: str, *, integral: bool) -> int | float | None:
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    if match.group(1) is None and match.group(2) is None:
        try:
            return int(text)
        except ValueError:  # more digits than Python converts
            raise CellError("the integer has too many digits") from None
    value = float(text)
    if not math.isfinite(value):
        raise CellError(f"number {text} is out of range")
    if integral and not value.is_integer():
        return None
    return value


def coerce_row(
    header: list[str], cells: list[str], schema: RecordSchema
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A CSV row as a record; empty cells are absent fields."""
    if len(cells) != len(header):
        message = f"expected {len(header)} fields, got {len(cells)}"
        return {}, [{"path": "", "message": message}]
    record: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for name, cell in zip(header, cells, strict=True):
        if cell == "":
            continue
        try:
            record[name] = parse_cell(cell, schema.property_types.get(name))
        except (CellError, jsonbody.JsonBodyError) as exc:
            errors.append({"path": _pointer(name), "message": str(exc)})
    return record, errors


def render_cell(value: Any, types: frozenset[str] | None, style: CsvStyle = "exact") -> str:
    """A stored value as the cell text :func:`parse_cell` reads back to it.

    In the spreadsheet style a string that a spreadsheet would run as a
    formula is prefixed with ``'`` instead, and no longer reads back.
    """
    if isinstance(value, str):
        if style == "spreadsheet" and value.startswith(FORMULA_STARTS):
            return "'" + value
        if value and _reads_back(value, types):
            return value
        return jsonbody.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return jsonbody.dumps(value)


def _reads_back(text: str, types: frozenset[str] | None) -> bool:
    try:
        value = parse_cell(text, types)
    except (CellError, jsonbody.JsonBodyError):
        return False
    return isinstance(value, str) and value == text


def render_line(cells: Iterable[str]) -> str:
    """One CSV line (RFC 4180 quoting, CRLF terminated)."""
    return (
        ",".join(
            '"' + cell.replace('"', '""') + '"' if _MUST_QUOTE.search(cell) else cell
            for cell in cells
        )
        + "\r\n"
    )


def render_header(names: list[str], style: CsvStyle = "exact") -> str:
    """The header line; property names are text a schema author chose, so neutralised too."""
    if style == "spreadsheet":
        return render_line("'" + n if n.startswith(FORMULA_STARTS) else n for n in names)
    return render_line(names)


def render_row(
    names: list[str], schema: RecordSchema, record: dict[str, Any], style: CsvStyle = "exact"
) -> str:
    return render_line(
        render_cell(record[name], schema.property_types.get(name), style) if name in record else ""
        for name in names
    )
