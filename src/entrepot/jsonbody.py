"""Strict JSON for request bodies and bulk lines.

The standard library parser keeps integers exact at any size (orjson turns
big ones into floats, silently losing digits); non-finite numbers are
refused; and strings PostgreSQL's jsonb cannot store (NUL characters, lone
surrogates) are refused with their path instead of failing in the database.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

MAX_DEPTH = 64


class JsonBodyError(ValueError):
    """``path`` is a JSON Pointer into the document, or None when the text itself is bad."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonBodyError(f"number {text} is out of range")
    return value


def _no_constants(text: str) -> Any:
    raise JsonBodyError(f"{text} is not valid JSON")


# One decoder for every call: json.loads with hooks builds a new one each time,
# which was a third of bulk-import CPU (bench/RESULTS.md, "Where the time goes").
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constants)


# orjson is several times faster but rounds integers beyond 64 bits to floats.
# A run of 16 digits is where that could start (it also catches long
# mantissas, harmlessly): such documents take the exact standard parser.
_LONG_DIGITS_BYTES = re.compile(rb"[0-9]{16}")
_LONG_DIGITS = re.compile(r"[0-9]{16}")


def loads(raw: bytes | str) -> Any:
    """Parse and check a document; the same answer, or the same error, as the standard parser."""
    long_digits = (
        _LONG_DIGITS_BYTES.search(raw) if isinstance(raw, bytes) else _LONG_DIGITS.search(raw)
    )
    if long_digits is None:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # let the standard parser name the fault, in its words
        else:
            if _may_be_unstorable(raw):
                check_storable(value)
            return value
    return _loads_exactly(raw)


def _may_be_unstorable(raw: bytes | str) -> bool:
    """orjson refuses lone surrogates itself; NUL needs an escape; depth needs brackets."""
    if isinstance(raw, bytes):
        return b"\\u0000" in raw or raw.count(b"{") + raw.count(b"[") > MAX_DEPTH
    return "\\u0000" in raw or raw.count("{") + raw.count("[") > MAX_DEPTH


def _loads_exactly(raw: bytes | str) -> Any:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = _DECODER.decode(text)
    except JsonBodyError:
        raise
    except UnicodeDecodeError as exc:
        raise JsonBodyError("the body is not valid UTF-8") from exc
    except (ValueError, RecursionError) as exc:
        raise JsonBodyError(f"malformed JSON: {exc}") from exc
    check_storable(value)
    return value


def loads_trusted(text: str) -> Any:
    """Parse JSON we produced ourselves (PostgreSQL output): exact, unchecked."""
    return json.loads(text)


def dumps(value: Any) -> str:
    """Compact JSON text with exact integers, for sending to PostgreSQL."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def canonical(value: Any) -> str:
    """:func:`dumps` with keys sorted: equal for documents that differ only in key order
    (and, unlike ``==``, not for ``1``, ``1.0`` and ``true``)."""
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True
    )


def dumps_parsed(value: Any) -> str:
    """:func:`dumps` for a document :func:`loads` returned (so no NaN or infinity), faster."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits
        return dumps(value)


def _check_string(text: str, path: list[str]) -> None:
    if "\x00" in text:
        raise JsonBodyError("strings cannot contain the NUL character", _pointer(path))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JsonBodyError("strings cannot contain unpaired surrogates", _pointer(path)) from exc


def _pointer(path: list[str]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)


def check_storable(value: Any, path: list[str] | None = None, depth: int = 0) -> None:
    path = path if path is not None else []
    if depth > MAX_DEPTH:
        raise JsonBodyError(f"documents cannot nest deeper than {MAX_DEPTH} levels", _pointer(path))
    if isinstance(value, str):
        _check_string(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_string(key, path)
            path.append(key)
            check_storable(item, path, depth + 1)
            path.pop()
    elif isinstance(value, list):
        for index, item in enumerate(value):
            path.append(str(index))
            check_storable(item, path, depth + 1)
            path.pop()
