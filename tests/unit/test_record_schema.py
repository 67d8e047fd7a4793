"""What a field-narrowed grantee learns from a dataset's schema: only its own fields."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from entrepot.schema.record_schema import RecordSchema

EMPLOYEES: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://example.org/employees-with-salary",
    "$comment": "salary is confidential",
    "title": "Employees and their salaries",
    "description": "One record per employee; salary in EUR, bonus_pct of salary.",
    "examples": [{"name": "Ada", "salary": 100}],
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Full name"},
        "address": {"$ref": "#/$defs/address"},
        "salary": {"$ref": "#/$defs/money", "description": "Gross salary"},
        "bonus_pct": {"type": "number"},
        "mirror": {"$ref": "#/properties/salary"},
    },
    "required": ["name", "salary"],
    "dependentRequired": {"salary": ["bonus_pct"]},
    "if": {"properties": {"salary": {"minimum": 100000}}},
    "then": {"required": ["bonus_pct"]},
    "patternProperties": {"^salary_": {"type": "number"}},
    "additionalProperties": False,
    "$defs": {
        "address": {"type": "object", "properties": {"city": {"$ref": "#/$defs/city"}}},
        "city": {"type": "string", "maxLength": 80},
        "money": {"type": "number", "description": "salary amount in EUR", "minimum": 0},
    },
}


def test_the_narrowed_document_says_nothing_about_hidden_fields() -> None:
    schema = RecordSchema.compile(EMPLOYEES).narrowed(frozenset({"name", "address", "mirror"}))
    assert schema.document == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Full name"},
            "address": {"$ref": "#/$defs/address"},
            "mirror": {},  # pointed into the hidden salary
        },
        "required": ["name"],
        "$defs": {
            "address": {"type": "object", "properties": {"city": {"$ref": "#/$defs/city"}}},
            "city": {"type": "string", "maxLength": 80},
        },
    }
    text = orjson.dumps(schema.document).decode().lower()
    for word in ("salary", "bonus", "money", "confidential", "eur"):
        assert word not in text
    # What remains is a schema the grantee can use as is.
    compiled = RecordSchema.compile(schema.document)
    assert compiled.errors({"name": "Ada", "address": {"city": "Paris"}}) == []


def test_a_visible_field_keeps_the_definitions_it_needs() -> None:
    schema = RecordSchema.compile(EMPLOYEES).narrowed(frozenset({"name", "salary"}))
    assert schema.document["$defs"] == {"money": EMPLOYEES["$defs"]["money"]}
    assert schema.document["required"] == ["name", "salary"]


@given(st.sets(st.sampled_from(sorted(EMPLOYEES["properties"]))))
def test_no_hidden_property_name_survives_narrowing(visible: set[str]) -> None:
    schema = RecordSchema.compile(EMPLOYEES).narrowed(frozenset(visible))
    assert set(schema.document.get("properties", {})) == visible
    assert set(schema.document.get("required", [])) <= visible
    assert set(schema.document) <= {"$schema", "type", "properties", "required", "$defs"}
    assert schema.hidden == frozenset(EMPLOYEES["properties"]) - visible
