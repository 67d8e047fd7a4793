"""A dataset's JSON Schema (2020-12), checked once and compiled for records.

Validation uses jsonschema-rs: about 0.2 us a typical record against 20 us for
the pure-Python ``jsonschema`` measured on this machine kind. Remote ``$ref``
retrieval is refused: a schema must never make the server fetch a URL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import jsonschema_rs

from entrepot.problems import Conflict, Unprocessable
from entrepot.schema import messages
from entrepot.schema.key_order import KeyOrder

SCALAR_TYPES = frozenset({"string", "number", "integer", "boolean", "null"})
KEY_TYPES = frozenset({"string", "integer"})
INTEGER_KEY = frozenset({"integer"})


def _refuse_remote(uri: str) -> Any:
    raise ValueError(f"remote references are not allowed: {uri}")


@dataclass(frozen=True)
class RecordSchema:
    document: dict[str, Any]
    validator: Any
    property_types: dict[str, frozenset[str] | None]  # in the order the schema declares them
    key_order: KeyOrder
    hidden: frozenset[str] = frozenset()
    # Record ids are a primary key declared integer (and only integer): decimal digits
    # in the id column, ordered as numbers (``(id::numeric)``) wherever ids are ordered.
    integer_ids: bool = False

    @classmethod
    def compile(cls, document: Any) -> RecordSchema:
        if not isinstance(document, dict):
            raise Unprocessable(
                "schema must be a JSON Schema object.",
                errors=[{"path": "/schema", "message": "not an object"}],
            )
        declared = document.get("$schema")
        if declared is not None and declared not in (
            "https://json-schema.org/draft/2020-12/schema",
            "https://json-schema.org/draft/2020-12/schema#",
        ):
            raise Unprocessable(
                "Only JSON Schema 2020-12 is supported.",
                errors=[{"path": "/schema/$schema", "message": "unsupported"}],
            )
        try:
            jsonschema_rs.meta.validate(
                {**document, "$schema": "https://json-schema.org/draft/2020-12/schema"}
            )
            validator = jsonschema_rs.Draft202012Validator(
                document, validate_formats=True, retriever=_refuse_remote
            )
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
            found = (
                messages.schema_errors(exc, document)
                if hasattr(exc, "kind")
                else [messages.bad_reference(document)]  # the store refused to fetch it
            )
            raise Unprocessable(
                "schema is not a valid JSON Schema 2020-12 document.", errors=found
            ) from None
        if document.get("type") != "object":
            raise Unprocessable(
                'A dataset schema must describe an object ("type": "object").',
                errors=[{"path": "/schema/type", "message": 'must be "object"'}],
            )
        properties = document.get("properties") or {}
        types: dict[str, frozenset[str] | None] = {}
        for name, sub in properties.items():
            declared_type = sub.get("type") if isinstance(sub, dict) else None
            if isinstance(declared_type, str):
                types[name] = frozenset({declared_type})
            elif isinstance(declared_type, list):
                types[name] = frozenset(str(t) for t in declared_type)
            else:
                types[name] = None
        return cls(document, validator, types, KeyOrder.of(document, list(types)))

    def errors(self, record: Any) -> list[dict[str, str]]:
        """Validation errors as ``{path, message}`` (JSON Pointers into the record)."""
        if self.validator.is_valid(record):
            return []
        return [
            found
            for err in self.validator.iter_errors(record)
            for found in messages.record_errors(err, self.document)
        ][:50]

    def keyed_by(self, primary_key: str | None) -> RecordSchema:
        """The schema of a dataset whose record ids are ``primary_key``'s values."""
        integer = primary_key is not None and self.property_types.get(primary_key) == INTEGER_KEY
        return self if integer == self.integer_ids else replace(self, integer_ids=integer)

    def has_property(self, name: str) -> bool:
        return name in self.property_types

    def narrowed(self, fields: frozenset[str]) -> RecordSchema:
        """The schema as a grantee limited to ``fields`` sees it.

        Hidden properties vanish from the document and from every lookup, but
        their names are remembered so no pseudo-field can alias one. The
        document keeps only what describes visible fields: their property
        schemas, the definitions those reach, and which of them are required.
        Everything else may speak of hidden fields (titles, descriptions,
        comments, examples, dependentRequired, if/then, patternProperties...)
        and is left out.
        """
        visible = {k: v for k, v in self.property_types.items() if k in fields}
        document: dict[str, Any] = {
            k: self.document[k] for k in ("$schema", "type") if k in self.document
        }
        properties = self.document.get("properties")
        if isinstance(properties, dict):
            shown = {k: v for k, v in properties.items() if k in fields}
            document["properties"] = _without_foreign_refs(shown)
            for key in ("$defs", "definitions"):
                kept = _reachable_definitions(document["properties"], self.document, key)
                if kept:
                    document[key] = _without_foreign_refs(kept)
        required = self.document.get("required")
        if isinstance(required, list):
            document["required"] = [k for k in required if k in fields]
        hidden = self.hidden | (frozenset(self.property_types) - fields)
        return RecordSchema(
            document, self.validator, visible, self.key_order, hidden, self.integer_ids
        )

    def check_key_field(self, name: str) -> None:
        types = self.property_types.get(name, frozenset())
        if name not in self.property_types or types is None or not types <= KEY_TYPES:
            raise Unprocessable(
                "primary_key must name a property of type string or integer.",
                errors=[
                    {
                        "path": "/primary_key",
                        "message": f"{name!r} is not a string or integer property",
                    }
                ],
            )

    def check_same_key_type(self, before: RecordSchema, name: str) -> None:
        """A schema change may not change the primary key's declared types: record ids
        were derived from it, and whether they order as numbers or as text."""
        was, now = before.property_types.get(name), self.property_types.get(name)
        if was != now:
            raise Conflict(
                "The primary key's type cannot change after creation: record ids and "
                "their order derive from it.",
                errors=[
                    {
                        "path": messages.pointer(["schema", "properties", name, "type"]),
                        "message": f"must stay {_types_text(was)}",
                    }
                ],
            )

    def check_indexable(self, fields: list[str]) -> None:
        unknown = [f for f in fields if f not in self.property_types]
        if unknown:
            raise Unprocessable(
                "indexes must name top-level properties of the schema.",
                errors=[
                    {"path": f"/indexes/{fields.index(f)}", "message": f"unknown property {f!r}"}
                    for f in unknown
                ],
            )


def _types_text(types: frozenset[str] | None) -> str:
    return " or ".join(sorted(types)) if types else "as it was"


def _refs(node: Any) -> list[str]:
    """Every ``$ref`` string anywhere under ``node``."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def _definition_name(ref: str, key: str) -> str | None:
    prefix = f"#/{key}/"
    if not ref.startswith(prefix):
        return None
    return ref[len(prefix) :].split("/", 1)[0].replace("~1", "/").replace("~0", "~")


def _reachable_definitions(node: Any, root: dict[str, Any], key: str) -> dict[str, Any]:
    """The definitions under ``root[key]`` that ``node`` reaches, directly or through others."""
    available = root.get(key)
    if not isinstance(available, dict):
        return {}
    kept: dict[str, Any] = {}
    pending = _refs(node)
    while pending:
        name = _definition_name(pending.pop(), key)
        if name is not None and name in available and name not in kept:
            kept[name] = available[name]
            pending += _refs(available[name])
    return kept


def _without_foreign_refs(node: Any) -> Any:
    """``node`` with each local reference outside the definitions replaced by a schema
    that admits anything: such a reference may point into a hidden property."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if (
            isinstance(ref, str)
            and ref.startswith("#")
            and _definition_name(ref, "$defs") is None
            and _definition_name(ref, "definitions") is None
        ):
            return {k: v for k, v in node.items() if k != "$ref"}
        return {k: _without_foreign_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_foreign_refs(item) for item in node]
    return node
