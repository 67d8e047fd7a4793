"""The typed columns of a MySQL mirror, derived from a JSON Schema (no server needed).

What a property becomes, what MySQL cannot hold (refused naming the property),
and how a record's values are put in their columns: a value the column cannot
represent is NULL there (``data`` keeps it), a value of a type the column was not
made for means the schema changed (SchemaDrift).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from entrepot.sync.base import SchemaDrift
from entrepot.sync.columns import Layout, Unholdable


def layout(**properties: Any) -> Layout:
    return Layout.of({"type": "object", "properties": properties})


def types(found: Layout) -> dict[str, str]:
    return {c.name: c.type for c in found.columns}


def test_each_kind_of_property_gets_its_column_type_in_declared_order() -> None:
    found = layout(
        count={"type": "integer", "minimum": 0, "maximum": 1000},
        big={"type": "integer"},
        half={"type": "integer", "minimum": 0},
        price={"type": "number"},
        either={"type": ["integer", "number"]},
        ok={"type": "boolean"},
        at={"type": "string", "format": "date-time"},
        code={"type": "string", "maxLength": 12},
        size={"enum": ["S", "M", "XL"], "type": "string"},
        note={"type": "string", "maxLength": 2000},
        page={"type": "string", "maxLength": 100_000},
        text={"type": "string"},
        maybe={"type": ["string", "null"], "maxLength": 3},
        tags={"type": "array", "items": {"type": "string"}},
        meta={"type": "object"},
        mixed={"type": ["string", "integer"]},
        anything={},
    )
    assert types(found) == {
        "count": "BIGINT",
        "big": "DECIMAL(65,0)",
        "half": "DECIMAL(65,0)",  # one bound only: not known to fit 64 bits
        "price": "DOUBLE",
        "either": "DOUBLE",
        "ok": "BOOLEAN",
        "at": "DATETIME(6)",
        "code": "VARCHAR(12)",
        "size": "VARCHAR(2)",
        "note": "TEXT",
        "page": "MEDIUMTEXT",
        "text": "LONGTEXT",
        "maybe": "VARCHAR(3)",
        "tags": "JSON",
        "meta": "JSON",
        "mixed": "JSON",
        "anything": "JSON",
    }


def test_a_property_named_like_the_agents_own_columns_gets_a_trailing_underscore() -> None:
    found = layout(id={"type": "integer"}, Version={"type": "string"}, data={"type": "object"})
    assert [(c.prop, c.name) for c in found.columns] == [
        ("id", "id_"),
        ("Version", "Version_"),
        ("data", "data_"),
    ]


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"x" * 65: {}}, "its column name would be 65 characters, MySQL allows 64"),
        ({"Name": {}, "name": {}}, "properties 'Name' and 'name' would be columns"),
        ({"id": {}, "ID_": {}}, "'id' and 'ID_' would be columns 'id_' and 'ID_'"),
        ({"smile 😀": {}}, "property 'smile 😀': MySQL column names cannot hold characters"),
        ({"padded ": {}}, "property 'padded ': MySQL refuses a column name ending with a space"),
        ({"   ": {}}, "property '   ': MySQL refuses an empty or blank column name"),
        ({f"p{i}": {} for i in range(1015)}, "1015 properties: an InnoDB table holds at most"),
        (
            {f"s{i}": {"type": "string", "maxLength": 255} for i in range(70)},
            "a row would be 72,592 bytes, over MySQL's 65,535; the largest columns are 's0'",
        ),
    ],
)
def test_a_schema_mysql_cannot_hold_is_refused_naming_the_property(
    properties: dict[str, Any], message: str
) -> None:
    with pytest.raises(Unholdable) as refused:
        layout(**properties)
    assert message in str(refused.value)


def test_accents_are_not_a_collision_for_mysql_column_names() -> None:
    assert types(layout(**{"é": {"type": "integer"}, "e": {"type": "integer"}})) == {
        "é": "DECIMAL(65,0)",
        "e": "DECIMAL(65,0)",
    }


def test_values_go_into_their_columns_exactly() -> None:
    found = layout(
        n={"type": "integer"},
        small={"type": "integer", "minimum": -5, "maximum": 5},
        x={"type": "number"},
        ok={"type": "boolean"},
        at={"type": "string", "format": "date-time"},
        code={"type": "string", "maxLength": 4},
        tags={"type": "array"},
        gone={"type": "string"},
    )
    record = {
        "n": 12345678901234567890123,
        "small": 3.0,  # an integer in JSON Schema's eyes
        "x": 1.5,
        "ok": False,
        "at": "2024-02-29t23:30:00.1234567+02:00",
        "code": "ab",
        "tags": ["a", {"b": 10**30}],
        "extra": "not a column",
    }
    assert found.values("r1", record) == [
        12345678901234567890123,
        3,
        1.5,
        0,
        datetime(2024, 2, 29, 21, 30, 0, 123456),  # the instant in UTC, to the microsecond
        "ab",
        '["a",{"b":1000000000000000000000000000000}]',
        None,
    ]
    assert Decimal(found.values("r1", record)[0]) == Decimal("12345678901234567890123")


def test_a_value_its_column_cannot_represent_is_null_there() -> None:
    found = layout(
        n={"type": "integer"}, x={"type": "number"}, at={"type": "string", "format": "date-time"}
    )
    assert found.values("r", {"n": 10**65, "x": 10**400, "at": "2016-12-31T23:59:60Z"}) == [
        None,
        None,
        None,
    ]
    assert found.values("r", {"at": "0999-12-31T23:00:00-05:00"}) == [
        None,
        None,
        datetime(1000, 1, 1, 4, 0),
    ]
    assert found.values("r", {"at": "9999-12-31T23:00:00-05:00"})[2] is None


@pytest.mark.parametrize(
    ("properties", "value"),
    [
        ({"type": "integer"}, "7"),
        ({"type": "integer"}, True),
        ({"type": "integer", "minimum": 0, "maximum": 9}, 2**64),
        ({"type": "number"}, "1.5"),
        ({"type": "boolean"}, 1),
        ({"type": "string"}, 5),
        ({"type": "string", "maxLength": 3}, "abcd"),
        ({"type": "string", "format": "date-time"}, 20240101),
    ],
)
def test_a_value_of_another_type_than_its_column_means_the_schema_changed(
    properties: dict[str, Any], value: Any
) -> None:
    with pytest.raises(SchemaDrift, match=r"record 'r9': 'p' is .* its column p"):
        layout(p=properties).values("r9", {"p": value})


def test_the_fingerprint_changes_with_the_columns_only() -> None:
    first = layout(a={"type": "string", "maxLength": 9, "description": "one"})
    same = layout(a={"type": "string", "maxLength": 9, "description": "two"})
    wider = layout(a={"type": "string", "maxLength": 10})
    more = layout(a={"type": "string", "maxLength": 9}, b={"type": "boolean"})
    assert first.fingerprint() == same.fingerprint()
    assert len({first.fingerprint(), wider.fingerprint(), more.fingerprint()}) == 3
