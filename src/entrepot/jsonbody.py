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

from entrepot.problems import BadRequest, Unprocessable

MAX_DEPTH = 64


class JsonBodyError(ValueError):
    """``path`` is a JSON Pointer into the document, or None when no place can be named.

    ``syntax``: the text is not strict JSON (malformed, or an object repeats a key),
    which callers refuse as they refuse malformed JSON; otherwise it is well formed but
    holds what PostgreSQL cannot store (an unpaired surrogate, a NUL character).
    """

    def __init__(
        self, message: str, path: str | None = None, *, syntax: bool | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.syntax = path is None if syntax is None else syntax


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonBodyError(f"number {text} is out of range")
    return value


def _no_constants(text: str) -> Any:
    raise JsonBodyError(f"{text} is not valid JSON")


# What the standard parser says, in our words (it names the place as line and column).
_FAULTS = {
    "Expecting value": "a value was expected",
    "Expecting property name enclosed in double quotes": "a property name in double quotes "
    "was expected",
    "Expecting ':' delimiter": "':' was expected after the property name",
    "Expecting ',' delimiter": "',' or the end of the object or array was expected",
    "Unterminated string starting at": "a string is never closed",
    "Invalid control character at": "a control character must be escaped inside a string",
    "Invalid \\escape": "a string has an invalid escape",
    "Invalid \\uXXXX escape": "a string has an invalid \\u escape",
    "Extra data": "something follows the end of the document",
    "Illegal trailing comma before end of object": "a comma ends the object",
    "Illegal trailing comma before end of array": "a comma ends the array",
}


def _described(exc: json.JSONDecodeError) -> str:
    fault = _FAULTS.get(exc.msg, "the text is not JSON")
    return f"{fault} (line {exc.lineno}, column {exc.colno})"


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
            pass  # let the standard parser name the fault
        else:
            if _may_be_unstorable(raw):
                check_storable(value)
            check_unique_keys(raw, value)
            return value
    return _loads_exactly(raw)


# --- duplicate keys -------------------------------------------------------------------
#
# Both parsers keep the last of repeated keys; strict JSON (RFC 8259: names SHOULD
# be unique; I-JSON, RFC 7493: MUST) refuses them. The check compares colons: the
# text's are its keys plus the colons inside its strings, and the parsed document
# written out again (by orjson, compact) has its own keys plus the colons of the
# strings it kept. So when no colon was escaped (``\u003a``), the two counts are
# equal exactly when no key was dropped, that is none repeated: a flat record whose
# values hold no colon needs one count (as many colons as keys), others one write
# and two counts at C speed, and only a document that does repeat a key is parsed
# again, by the standard parser, to say which key and where.

_STRINGS_BYTES = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def _compact(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits
        return dumps(value).encode()


def _structural_colons(text: bytes) -> int:
    """Colons outside strings: the text's keys."""
    if b'\\"' not in text:  # quotes delimit strings: every other piece is outside them
        return b"".join(text.split(b'"')[0::2]).count(b":")
    return _STRINGS_BYTES.sub(b"", text).count(b":")


def check_unique_keys(raw: bytes | str, value: Any) -> None:
    """Refuse a document ``value`` (parsed from ``raw``) if an object in it repeats a key."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return
    text = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    colons = text.count(b":")
    if colons == 0 or (kind is dict and colons == len(value)):
        return
    again = _compact(value)
    if b"\\u003" not in text:
        if again.count(b":") == colons:
            return
    elif _structural_colons(text) == _structural_colons(again):
        return
    _raise_repeated(text)


class _Pairs(list[tuple[str, Any]]):
    """An object's members as the text has them, repeats included."""


_PAIRS_DECODER = json.JSONDecoder(
    object_pairs_hook=_Pairs, parse_float=_finite_float, parse_constant=_no_constants
)


def _raise_repeated(raw: bytes) -> None:
    found = _first_repeat(_PAIRS_DECODER.decode(raw.decode("utf-8", "surrogatepass")), [])
    if found is None:  # cannot be, by the counts above; accept rather than fail
        return
    key, path = found
    raise JsonBodyError(
        f"the key {json.dumps(key, ensure_ascii=False)} appears more than once in one object",
        _pointer(path),
        syntax=True,
    )


def _first_repeat(node: Any, path: list[str]) -> tuple[str, list[str]] | None:
    """The first repeated key in document order, and the pointer to its member."""
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for key, _ in node:
            if key in seen:
                return key, [*path, key]
            seen.add(key)
        items: list[tuple[str, Any]] = list(node)
    elif isinstance(node, list):
        items = [(str(i), v) for i, v in enumerate(node)]
    else:
        return None
    for key, child in items:
        found = _first_repeat(child, [*path, key])
        if found is not None:
            return found
    return None


def parse_body(raw: bytes | str) -> Any:
    """A request body as :func:`loads` reads it, or the problem every route answers:
    400 for text that is not strict JSON (malformed, a repeated key), 422 for JSON
    that cannot be stored, both with the place as ``path`` ("" when none is known)."""
    try:
        return loads(raw)
    except JsonBodyError as exc:
        errors = [{"path": exc.path or "", "message": exc.message}]
        if exc.syntax:
            raise BadRequest(f"The body is not valid JSON: {exc.message}.", errors=errors) from None
        raise Unprocessable("The body cannot be stored.", errors=errors) from None


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
    except json.JSONDecodeError as exc:
        raise JsonBodyError(_described(exc)) from exc
    except RecursionError as exc:
        raise JsonBodyError(f"documents cannot nest deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # not raised by the decoder today: say nothing of its words
        raise JsonBodyError("the text is not JSON") from exc
    check_storable(value)
    check_unique_keys(text, value)
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
