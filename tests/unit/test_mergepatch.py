"""JSON Merge Patch (RFC 7396): the Appendix A examples and algebraic properties."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.records.mergepatch import merge_patch

# RFC 7396, Appendix A: (original, patch, result).
APPENDIX_A: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "patch", "result"), APPENDIX_A)
def test_rfc7396_appendix_a(original: Any, patch: Any, result: Any) -> None:
    assert merge_patch(original, patch) == result


# --- properties --------------------------------------------------------------

scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)
keys = st.text(max_size=4)


def json_values(*, nulls: bool) -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.none(), scalars) if nulls else scalars
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            # Arrays are replaced whole, so nulls inside them are ordinary values.
            st.lists(st.one_of(inner, st.none()), max_size=4),
            st.dictionaries(keys, inner, max_size=4),
        ),
        max_leaves=12,
    )


documents = json_values(nulls=True)
# Merge patch cannot express "set this member to null", so diff targets carry
# no nulls as object members (nulls inside arrays are fine).
null_free_documents = json_values(nulls=False)
objects = st.dictionaries(keys, documents, max_size=5)


def diff(source: Any, target: Any) -> Any:
    """A merge patch that turns ``source`` into ``target``."""
    if not isinstance(target, dict):
        return target
    if not isinstance(source, dict):
        source = {}
    patch: dict[str, Any] = {key: None for key in source if key not in target}
    for key, value in target.items():
        if key in source and source[key] == value and type(source[key]) is type(value):
            continue
        patch[key] = diff(source.get(key), value) if isinstance(value, dict) else value
    return patch


@settings(max_examples=300, deadline=None)
@given(target=objects)
def test_empty_patch_is_identity_for_objects(target: dict[str, Any]) -> None:
    assert merge_patch(target, {}) == target


@settings(max_examples=300, deadline=None)
@given(source=documents, target=null_free_documents)
def test_applying_a_diff_reproduces_the_target(source: Any, target: Any) -> None:
    assert merge_patch(source, diff(source, target)) == target


@settings(max_examples=300, deadline=None)
@given(target=documents, patch=documents)
def test_applying_a_patch_twice_is_applying_it_once(target: Any, patch: Any) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


@settings(max_examples=300, deadline=None)
@given(target=documents, patch=documents)
def test_inputs_are_never_mutated(target: Any, patch: Any) -> None:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    merge_patch(target, patch)
    assert target == target_before
    assert patch == patch_before


@settings(max_examples=300, deadline=None)
@given(target=documents, patch=st.dictionaries(keys, documents, max_size=5))
def test_object_patch_result_follows_the_patch_member_by_member(
    target: Any, patch: dict[str, Any]
) -> None:
    result = merge_patch(target, patch)
    assert isinstance(result, dict)
    base = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            assert key not in result
        elif not isinstance(value, dict):
            assert result[key] == value
    for key, value in base.items():
        if key not in patch:
            assert result[key] == value
