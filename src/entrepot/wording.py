"""Problem messages in our words: plain, precise, and never a library's phrasing.

A validation error says what a value must be, and what it is when that helps
("must be an integer, got a string"), with the place in ``path`` beside it. The
request models' errors (pydantic's) are worded here from their type and context;
record schema errors in :mod:`entrepot.schema.messages`, with these helpers. A type
this module does not know gets a plain fallback, never the library's message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

MAX_SHOWN = 40  # characters of a value quoted in a message

_ARTICLES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}
JSON_TYPES = tuple(_ARTICLES)


def kind_of(value: Any) -> str:
    """The JSON type of ``value`` with its article: "a string", "an integer", "null"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "an integer" if value.is_integer() else "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return "a value"


def types_phrase(types: Iterable[str]) -> str:
    """JSON Schema type names as words: "a string or an integer"."""
    names = [_ARTICLES.get(t, repr(t)) for t in types]
    return or_list(names)


def or_list(items: list[str]) -> str:
    if len(items) <= 2:
        return " or ".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def shown(value: Any) -> str:
    """A value as JSON text, shortened: for quoting what was sent or allowed."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError):
        text = str(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def count(n: Any, noun: str) -> str:
    """ "1 character", "3 characters" (``n`` as the library gives it: int, str, float)."""
    try:
        number = int(n)
    except (TypeError, ValueError):
        return f"{n} {noun}s"
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def got(value: Any) -> str:
    return f", got {kind_of(value)}"


# --- request models (pydantic) ---------------------------------------------------------

# Patterns of the request models, said as rules (a test keeps these in step with fields.py).
PATTERN_WORDS = {
    r"^[a-z0-9][a-z0-9_-]{0,62}$": "must be a slug: 1 to 63 lowercase letters, digits, '-' "
    "and '_', starting with a letter or a digit",
    r"^[^\x00]{1,128}$": "must be 1 to 128 characters, with no NUL character",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "must be an email address",
    r"^https?://\S+$": "must be an http:// or https:// URL",
}
_CHOICES = re.compile(r"^\^\(([\w:|.-]+)\)\$$")

_TYPE_ERRORS = {
    "string_type": "a string",
    "string_unicode": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "mapping_type": "an object",
    "dataclass_type": "an object",
    "typed_dict_type": "an object",
    "list_type": "an array",
    "tuple_type": "an array",
    "set_type": "an array",
    "frozen_set_type": "an array",
    "iterable_type": "an array",
    "datetime_type": "a date and time (RFC 3339)",
    "datetime_parsing": "a date and time (RFC 3339, e.g. 2026-01-31T12:00:00Z)",
    "datetime_from_date_parsing": "a date and time (RFC 3339, e.g. 2026-01-31T12:00:00Z)",
    "datetime_object_invalid": "a date and time (RFC 3339)",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "a date with no time of day",
    "time_type": "a time of day (HH:MM:SS)",
    "time_parsing": "a time of day (HH:MM:SS)",
    "time_delta_type": "a duration",
    "time_delta_parsing": "a duration",
    "uuid_type": "a UUID",
    "uuid_parsing": "a UUID",
    "url_type": "a URL",
    "url_parsing": "a URL",
    "url_syntax_violation": "a URL",
    "bytes_type": "a string",
    "none_required": "null",
}


def pydantic_message(error: Mapping[str, Any]) -> str:
    """Our words for one of pydantic's errors (``ValidationError.errors()`` items)."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this request"
    if kind in _TYPE_ERRORS:
        return f"must be {_TYPE_ERRORS[kind]}{got(value)}"
    if kind == "string_too_short":
        return f"must be at least {count(ctx.get('min_length'), 'character')} long"
    if kind == "string_too_long":
        return f"must be at most {count(ctx.get('max_length'), 'character')} long"
    if kind == "too_short":
        return f"must have at least {count(ctx.get('min_length'), 'item')}"
    if kind == "too_long":
        return f"must have at most {count(ctx.get('max_length'), 'item')}"
    if kind == "string_pattern_mismatch":
        return _pattern_rule(str(ctx.get("pattern", "")))
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", '"')
        return f"must be one of: {expected}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return _bound(kind, ctx)
    if kind == "multiple_of":
        return f"must be a multiple of {ctx.get('multiple_of')}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "int_parsing_size":
        return "must be an integer small enough to store"
    if kind in ("datetime_past", "date_past"):
        return "must be in the past"
    if kind in ("datetime_future", "date_future"):
        return "must be in the future"
    if kind == "timezone_naive":
        return "must have no time zone"
    if kind == "timezone_aware":
        return "must have a time zone (Z or an offset such as +01:00)"
    if kind == "url_scheme":
        return f"must be a URL starting with {ctx.get('expected_schemes', 'a known scheme')}"
    if kind == "url_too_long":
        return f"must be a URL of at most {count(ctx.get('max_length'), 'character')}"
    if kind == "uuid_version":
        return f"must be a version {ctx.get('expected_version')} UUID"
    if kind in ("value_error", "assertion_error") and ctx.get("error") is not None:
        return str(ctx["error"])  # our own validators' words
    if kind == "json_invalid":
        return "is not valid JSON"
    if kind == "union_tag_invalid":
        return f"must name one of the known kinds ({ctx.get('expected_tags', '')})"
    if kind == "union_tag_not_found":
        return f"must say which kind it is ({ctx.get('discriminator', 'its kind')})"
    return "is not valid here"


def _pattern_rule(pattern: str) -> str:
    if pattern in PATTERN_WORDS:
        return PATTERN_WORDS[pattern]
    choices = _CHOICES.match(pattern)
    if choices:
        return "must be one of: " + ", ".join(choices.group(1).split("|"))
    return f"must match the pattern {shown(pattern)}"


def _bound(kind: str, ctx: Mapping[str, Any]) -> str:
    words = {
        "greater_than": ("greater than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    phrase, key = words[kind]
    return f"must be {phrase} {ctx.get(key)}"
