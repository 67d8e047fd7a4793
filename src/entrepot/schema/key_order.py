"""Records' keys in the schema's declared order, whatever order the store keeps.

PostgreSQL's jsonb orders an object's keys by length, then bytes, so
``data::text`` of ``{"code", "zeta", "alpha", "b"}`` reads back as
``{"b", "code", "zeta", "alpha"}``. Every place that serialises a record for
a reader goes through :meth:`KeyOrder.text`: the schema's properties first, in
the order the schema declares them, then any other keys in code point order.

When the store's order already is the declared one for every record the schema
admits (no keys beyond its properties, and those declared in jsonb's order), the
text is passed through untouched; otherwise it is parsed (orjson) and written again,
about 1.5 us for a small record (bench/RESULTS.md). Numbers keep their value:
integers exactly, however long (orjson turns one beyond 64 bits into a float: such
a record is parsed again with every number kept as written), and other numbers
are doubles already (every write path parses them as doubles), which orjson writes
back as the shortest text of the same double.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

# Unrolled: measurably faster than ``[0-9]{16}`` in CPython's engine.
_LONG_DIGITS = re.compile("[0-9]" * 16)
_VERBATIM = json.JSONDecoder(parse_int=orjson.Fragment, parse_float=orjson.Fragment)
_BIG = float(2**63)  # orjson's integers end here: a float this large was an integer


def _parsed(text: str) -> Any:
    """The record in ``text`` with every number's value as stored."""
    data = orjson.loads(text)
    for value in data.values():
        kind = type(value)
        if kind is float:
            if not -_BIG < value < _BIG:
                return _VERBATIM.decode(text)
        elif kind is dict or kind is list:  # not worth walking: look for long numbers
            return _VERBATIM.decode(text) if _LONG_DIGITS.search(text) else data
    return data


def _jsonb_rank(name: str) -> tuple[int, bytes]:
    raw = name.encode("utf-8", "surrogatepass")
    return len(raw), raw


@dataclass(frozen=True, slots=True)
class KeyOrder:
    names: tuple[str, ...]
    closed: bool  # no record can hold a key the schema does not declare
    passthrough: bool  # the store's order is the declared order for every record

    @classmethod
    def of(cls, document: dict[str, Any], names: list[str]) -> KeyOrder:
        closed = document.get("additionalProperties") is False and not document.get(
            "patternProperties"
        )
        in_store_order = names == sorted(names, key=_jsonb_rank)
        return cls(tuple(names), closed, closed and in_store_order)

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with the declared properties first, in order, then the rest."""
        ordered = {name: data[name] for name in self.names if name in data}
        if len(ordered) != len(data):
            ordered.update(sorted((k, v) for k, v in data.items() if k not in ordered))
        return ordered

    def text(self, data_text: str) -> str:
        """A record's JSON text (jsonb's output, or any JSON object) in declared order."""
        if self.passthrough:
            return data_text
        return orjson.dumps(self.apply(_parsed(data_text))).decode()
