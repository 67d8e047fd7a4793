"""JSON Schema validation errors in our words, one ``{path, message}`` each.

jsonschema-rs names every failure by its keyword (``ValidationErrorKind``) with
the facts it needs (the limit, the allowed types, the unexpected properties);
the message is written here from those facts and from the dataset's schema, so
that it reads "must be an integer, got a string" rather than the library's
sentence. ``path`` is a JSON Pointer into the record ("" for the whole record);
a member that should not be there is pointed at itself, and a missing one is
named at the object that lacks it. A keyword this module does not know gets a
plain fallback, never the library's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from entrepot.wording import JSON_TYPES, count, got, or_list, shown, types_phrase

FALLBACK = "does not match the dataset's schema"
_FORMATS = {
    "date-time": "a date and time (RFC 3339, e.g. 2026-01-31T12:00:00Z)",
    "date": "a date (YYYY-MM-DD)",
    "time": "a time of day (RFC 3339, e.g. 12:00:00Z)",
    "duration": "a duration (ISO 8601, e.g. P3DT4H)",
    "email": "an email address",
    "idn-email": "an email address",
    "hostname": "a host name",
    "idn-hostname": "a host name",
    "ipv4": "an IPv4 address",
    "ipv6": "an IPv6 address",
    "uri": "an absolute URI",
    "uri-reference": "a URI reference",
    "iri": "an absolute IRI",
    "iri-reference": "an IRI reference",
    "uri-template": "a URI template (RFC 6570)",
    "uuid": "a UUID",
    "json-pointer": "a JSON Pointer",
    "relative-json-pointer": "a relative JSON Pointer",
    "regex": "a regular expression",
}
_MAX_CHOICES = 10


def pointer(parts: Sequence[str | int]) -> str:
    """RFC 6901: the whole document is "", never "/" (the member named "")."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def record_errors(error: Any, document: Any) -> list[dict[str, str]]:
    """Our ``{path, message}`` for one jsonschema-rs error against ``document``."""
    kind = type(error.kind).__name__
    where = list(error.instance_path)
    facts = error.kind
    if kind in ("AdditionalProperties", "UnevaluatedProperties"):
        return [
            {"path": pointer([*where, name]), "message": "is not a property of the schema"}
            for name in facts.unexpected
        ]
    if kind == "Required":
        return [{"path": pointer(where), "message": _required(error, document)}]
    return [{"path": pointer(where), "message": message(error, document)}]


def message(error: Any, document: Any) -> str:
    """The message of one error (its place aside)."""
    kind = type(error.kind).__name__
    facts = error.kind
    value = error.instance
    if kind == "Type":
        return f"must be {types_phrase(_names(facts.types))}{got(value)}"
    if kind == "Enum":
        return "must be one of: " + _choices(facts.options)
    if kind == "Constant":
        return f"must be exactly {shown(facts.expected_value)}"
    bound = _bound(kind, facts, value)
    if bound:
        return bound
    sized = _sized(kind, facts)
    if sized:
        return sized
    if kind == "Pattern":
        return f"must match the pattern {shown(facts.pattern)}"
    if kind == "Format":
        return f"must be {_FORMATS.get(facts.format, 'a valid ' + shown(facts.format))}"
    if kind == "UniqueItems":
        return "must not repeat an item"
    if kind in ("AnyOf", "OneOfNotValid", "OneOfMultipleValid"):
        return _alternatives(kind, _at(document, list(error.schema_path)), document)
    if kind == "Not":
        return f"must not be {_described(facts.schema, document)}"
    if kind == "Contains":
        return _contains(error, document)
    if kind == "FalseSchema":
        return "is not allowed here"
    if kind in ("UnevaluatedItems", "AdditionalItems"):
        extra = len(getattr(facts, "unexpected", ()) or ()) or None
        more = f" ({count(extra, 'item')} too many)" if extra else ""
        return f"has more items than the schema describes{more}"
    if kind == "PropertyNames":
        inner = facts.error
        return f"has a property name {shown(inner.instance)} that {message(inner, document)}"
    if kind == "ContentEncoding":
        return f"must be {getattr(facts, 'content_encoding', 'encoded')}-encoded text"
    if kind == "ContentMediaType":
        return f"must be text of type {getattr(facts, 'content_media_type', 'the declared type')}"
    if kind == "BacktrackLimitExceeded":
        return "could not be checked: the schema's pattern is too complex for this value"
    return FALLBACK


def _names(types: Any) -> list[str]:
    return [str(t) for t in types]


def _choices(options: Any) -> str:
    listed = [shown(o) for o in list(options)[:_MAX_CHOICES]]
    more = len(list(options)) - len(listed)
    return ", ".join(listed) + (f" (or {more} more)" if more > 0 else "")


def _bound(kind: str, facts: Any, value: Any) -> str | None:
    words = {
        "Minimum": "at least",
        "Maximum": "at most",
        "ExclusiveMinimum": "greater than",
        "ExclusiveMaximum": "less than",
    }
    if kind in words:
        return f"must be {words[kind]} {shown(facts.limit)}, got {shown(value)}"
    if kind == "MultipleOf":
        return f"must be a multiple of {shown(facts.multiple_of)}, got {shown(value)}"
    return None


def _sized(kind: str, facts: Any) -> str | None:
    sizes = {
        "MinLength": ("must be at least", "character", " long"),
        "MaxLength": ("must be at most", "character", " long"),
        "MinItems": ("must have at least", "item", ""),
        "MaxItems": ("must have at most", "item", ""),
        "MinProperties": ("must have at least", "property", ""),
        "MaxProperties": ("must have at most", "property", ""),
    }
    if kind not in sizes:
        return None
    lead, noun, tail = sizes[kind]
    counted = count(facts.limit, noun)
    if noun == "property" and not counted.startswith("1 "):
        counted = counted.removesuffix("propertys") + "properties"
    return f"{lead} {counted}{tail}"


def _required(error: Any, document: Any) -> str:
    name = shown(str(error.kind.property))
    schema_path = list(error.schema_path)
    if schema_path and schema_path[-1] == "dependentRequired":
        rules = _at(document, schema_path)
        present = error.instance if isinstance(error.instance, dict) else {}
        if isinstance(rules, dict):
            for trigger, needed in rules.items():
                if (
                    trigger in present
                    and isinstance(needed, list)
                    and error.kind.property in needed
                ):
                    return f"{name} is required when {shown(trigger)} is present"
    return f"{name} is required"


def _alternatives(kind: str, options: Any, document: Any) -> str:
    described = ""
    if isinstance(options, list) and options:
        described = " (" + ", or ".join(_described(o, document) for o in options) + ")"
    if kind == "AnyOf":
        return f"must match one of the allowed schemas{described}"
    if kind == "OneOfNotValid":
        return f"must match exactly one of the allowed schemas{described}"
    return f"must match exactly one of the allowed schemas{described}, but matches several"


def _contains(error: Any, document: Any) -> str:
    schema_path = list(error.schema_path)
    parent = _at(document, schema_path[:-1])
    parent = parent if isinstance(parent, dict) else {}
    what = _described(parent.get("contains", True), document)
    if schema_path and schema_path[-1] == "maxContains":
        most = parent.get("maxContains")
        verb = "is" if most == 1 else "are"
        return f"must contain at most {count(most, 'item')} that {verb} {what}"
    least = parent.get("minContains", 1)
    verb = "is" if least == 1 else "are"
    return f"must contain at least {count(least, 'item')} that {verb} {what}"


def _described(schema: Any, document: Any, depth: int = 0) -> str:
    """A subschema in a few words, for "one of the allowed schemas (...)"."""
    if schema is True or schema == {}:
        return "anything"
    if schema is False:
        return "nothing"
    if not isinstance(schema, dict) or depth > 5:
        return "another shape"
    if isinstance(schema.get("$ref"), str):
        target = _resolve(document, schema["$ref"])
        if target is not None:
            return _described(target, document, depth + 1)
    if "const" in schema:
        return f"exactly {shown(schema['const'])}"
    if isinstance(schema.get("enum"), list):
        return "one of " + _choices(schema["enum"])
    declared = schema.get("type")
    if isinstance(declared, str):
        return types_phrase([declared])
    if isinstance(declared, list) and declared:
        return types_phrase([str(t) for t in declared])
    if "properties" in schema or "required" in schema:
        return "an object"
    if "items" in schema or "prefixItems" in schema:
        return "an array"
    if "pattern" in schema or "minLength" in schema or "maxLength" in schema:
        return "a string"
    return "another shape"


def _at(document: Any, schema_path: list[Any]) -> Any:
    """The node of ``document`` at a schema path, following local ``$ref`` segments."""
    node = document
    for part in schema_path:
        if part == "$ref" and isinstance(node, dict) and isinstance(node.get("$ref"), str):
            node = _resolve(document, node["$ref"])
        elif isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
        if node is None:
            return None
    return node


def _resolve(document: Any, ref: str) -> Any:
    """A local reference (``#/...``) within ``document``; None for any other (remote,
    or an anchor such as ``#item``)."""
    if not ref.startswith("#") or (len(ref) > 1 and ref[1] != "/"):
        return None
    node = document
    for raw in ref[1:].split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


# --- the dataset's schema itself (checked against the 2020-12 meta-schema) -----------


def schema_errors(error: Any, document: Any) -> list[dict[str, str]]:
    """Our ``{path, message}`` for a fault in a dataset's schema, found by the meta-schema
    (paths under ``/schema``)."""
    where = ["schema", *error.instance_path]
    kind = type(error.kind).__name__
    if kind == "Referencing":
        return [bad_reference(document)]
    if kind in ("AnyOf", "OneOfNotValid") and where[-1] == "type":
        listed = or_list([shown(t) for t in JSON_TYPES])
        text = f"must be one of the JSON types ({listed}), or a list of them, each once"
        return [{"path": pointer(where), "message": text}]
    if kind in ("AnyOf", "OneOfNotValid", "OneOfMultipleValid"):
        text = f"is not a valid value here{got(error.instance)}"
        return [{"path": pointer(where), "message": text}]
    if kind in ("AdditionalProperties", "UnevaluatedProperties", "Required"):
        return [{**e, "path": pointer(["schema"]) + e["path"]} for e in record_errors(error, {})]
    text = message(error, {})
    return [{"path": pointer(where), "message": "is not valid here" if text == FALLBACK else text}]


def bad_reference(document: Any) -> dict[str, str]:
    """Where a ``$ref`` of ``document`` cannot be followed, and why."""
    for path, ref in _references(document, ["schema"]):
        if not ref.startswith("#"):
            return {"path": pointer(path), "message": "must point inside this schema ('#...')"}
        if ref.startswith("#/") and _resolve(document, ref) is None:
            return {"path": pointer(path), "message": f"points to nothing in this schema: {ref}"}
    return {"path": "/schema", "message": "has a reference that cannot be followed"}


def _references(node: Any, path: list[str | int]) -> list[tuple[list[str | int], str]]:
    if isinstance(node, dict):
        found: list[tuple[list[str | int], str]] = []
        if isinstance(node.get("$ref"), str):
            found.append(([*path, "$ref"], node["$ref"]))
        for key, value in node.items():
            found += _references(value, [*path, key])
        return found
    if isinstance(node, list):
        return [r for i, item in enumerate(node) for r in _references(item, [*path, i])]
    return []
