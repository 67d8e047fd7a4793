"""An example record made from a JSON Schema, for the schema editor's preview.

A provider writing a schema sees what one record of it looks like before any record
exists. The example is only a preview: the page checks it against the compiled
schema (the API's compiler) and says so when a rule it cannot guess (a pattern, a
``not``) makes it invalid.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 6
FORMATS = {
    "date": "2026-01-31",
    "date-time": "2026-01-31T12:00:00Z",
    "time": "12:00:00Z",
    "email": "someone@example.org",
    "uri": "https://example.org/",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "example.org",
}


def example(schema: Any, depth: int = 0) -> Any:
    """One value ``schema`` admits, as far as its declared keywords tell."""
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    for key in ("enum", "examples"):
        listed = schema.get(key)
        if isinstance(listed, list) and listed:
            return listed[0]
    for key in ("oneOf", "anyOf", "allOf"):
        listed = schema.get(key)
        if isinstance(listed, list) and listed and "type" not in schema:
            return example(listed[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {str(name): example(sub, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        item = example(schema.get("items"), depth + 1)
        count = schema.get("minItems")
        return [item] * (count if isinstance(count, int) and 0 < count <= 5 else 1)
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "example"


def _string(schema: dict[str, Any]) -> str:
    form = schema.get("format")
    if isinstance(form, str) and form in FORMATS:
        return FORMATS[form]
    text = "example"
    low = schema.get("minLength")
    high = schema.get("maxLength")
    if isinstance(low, int) and 0 <= low <= 1000 and len(text) < low:
        text = text + "x" * (low - len(text))
    if isinstance(high, int) and 0 <= high < len(text):
        text = text[:high]
    return text


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    def bound(key: str) -> float | None:
        value = schema.get(key)
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    value = 1.0 if integer else 1.5
    low, high = bound("minimum"), bound("maximum")
    above, below = bound("exclusiveMinimum"), bound("exclusiveMaximum")
    if low is not None:
        value = max(value, low)
    if above is not None and value <= above:
        value = above + 1
    if high is not None:
        value = min(value, high)
    if below is not None and value >= below:
        value = below - 1
    if integer:
        try:
            return int(value)
        except (OverflowError, ValueError):
            return 1
    return value
