"""Records' keys in the schema's declared order: the order, and nothing else, changes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.schema.key_order import KeyOrder

NAMES = ["code", "zeta", "alpha", "b", "é", "aa"]
numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
records = st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=4)), values)


def as_jsonb(record: dict[str, Any]) -> str:
    """``record`` as PostgreSQL's jsonb writes it: keys by length, then bytes."""
    keys = sorted(record, key=lambda k: (len(k.encode()), k.encode()))
    return json.dumps({k: record[k] for k in keys}, ensure_ascii=False)


@settings(max_examples=400, deadline=None)
@given(record=records, closed=st.booleans())
def test_keys_come_declared_first_then_in_code_point_order(
    record: dict[str, Any], closed: bool
) -> None:
    order = KeyOrder.of({"additionalProperties": not closed}, NAMES)
    served = order.text(as_jsonb(record))
    assert list(json.loads(served)) == [n for n in NAMES if n in record] + sorted(
        k for k in record if k not in NAMES
    )


@settings(max_examples=400, deadline=None)
@given(record=records)
def test_every_value_is_kept_exactly(record: dict[str, Any]) -> None:
    served = KeyOrder.of({}, NAMES).text(as_jsonb(record))
    assert json.dumps(json.loads(served), sort_keys=True) == json.dumps(record, sort_keys=True)


def test_a_closed_schema_declared_in_the_stores_order_passes_text_through() -> None:
    order = KeyOrder.of({"additionalProperties": False}, ["a", "ab", "bb", "ccc"])
    assert order.passthrough
    assert order.text('{"a": 1,  "ccc": 2}') == '{"a": 1,  "ccc": 2}'
    assert not KeyOrder.of({"additionalProperties": False}, ["bb", "a"]).passthrough
    assert not KeyOrder.of({}, ["a", "bb"]).passthrough
    assert not KeyOrder.of(
        {"additionalProperties": False, "patternProperties": {"^x": {}}}, ["a"]
    ).passthrough
