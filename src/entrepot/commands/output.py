"""The one output layer: what a command answers, as a table, JSON or NDJSON.

The fields are the API's JSON (the SDK's models dumped by their wire names,
without what the SDK adds for itself, such as a record's ``dataset`` and
``etag``). ``table`` is the default on a terminal, ``json`` when stdout is
piped; a list in JSON is one array, streamed an item a line as pages arrive.
Messages about what was done go to stderr, so stdout stays parseable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from entrepot.client.models import Record


class Output(StrEnum):
    table = "table"
    json = "json"
    ndjson = "ndjson"


# Fields the SDK fills in for its own use, not part of the server's answer.
_CLIENT_ONLY: dict[type[BaseModel], set[str]] = {Record: {"dataset", "etag"}}


def plain(value: Any) -> Any:
    """The JSON value of a model (by its wire names), a list of them, or JSON as is."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude=_CLIENT_ONLY.get(type(value)))
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def dumps(value: Any, *, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return dumps(value)


class Printer:
    def __init__(self, fmt: Output | None) -> None:
        self.format = fmt or (Output.table if sys.stdout.isatty() else Output.json)
        self.console = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)

    def one(self, value: Any) -> None:
        """One resource (or any JSON object)."""
        data = plain(value)
        if self.format is Output.json:
            self._write(dumps(data, indent=2))
        elif self.format is Output.ndjson:
            self._write(dumps(data))
        else:
            table = Table(show_header=False, box=None, pad_edge=False)
            table.add_column(style="bold")
            table.add_column(overflow="fold")
            for key, item in data.items() if isinstance(data, dict) else [("value", data)]:
                table.add_row(key, _cell(item))
            self.console.print(table)

    def many(self, items: Iterable[Any], columns: Sequence[str]) -> int:
        """A list, streamed as it is iterated; ``columns`` are the table's (dotted for
        nested members, e.g. ``data.name``; ``data.*`` for every member of ``data`` the
        items have). Returns how many items were printed."""
        count = 0
        if self.format is Output.table:
            rows = [plain(item) for item in items]  # a table needs every width first
            names = _expanded(columns, rows)
            table = Table()
            for column in names:
                table.add_column(column.split(".", 1)[-1], overflow="fold")
            for data in rows:
                table.add_row(*(_cell(_member(data, c)) for c in names))
            self.console.print(table)
            return len(rows)
        opened = False
        for item in items:
            line = dumps(plain(item))
            if self.format is Output.ndjson:
                self._write(line)
            else:
                sys.stdout.write(("[\n  " if not opened else ",\n  ") + line)
                opened = True
            count += 1
        if self.format is Output.json:
            sys.stdout.write("\n]\n" if opened else "[]\n")
            sys.stdout.flush()
        return count

    def done(self, message: str) -> None:
        """What was done, for people (stderr)."""
        self.err.print(message, markup=False)

    @staticmethod
    def _write(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _member(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _expanded(columns: Sequence[str], rows: list[Any]) -> list[str]:
    """``prefix.*`` replaced by ``prefix.<key>`` for each key the rows have, in order."""
    out: list[str] = []
    for column in columns:
        if not column.endswith(".*"):
            out.append(column)
            continue
        prefix = column[:-2]
        keys: dict[str, None] = {}
        for row in rows:
            inner = _member(row, prefix)
            if isinstance(inner, dict):
                keys.update(dict.fromkeys(inner))
        out.extend(f"{prefix}.{key}" for key in keys)
    return out
