"""ETag header parsing for If-Match / If-None-Match (RFC 9110 section 13.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.records.preconditions import ETagSet, parse


def test_absent_header_is_none() -> None:
    assert parse(None) is None


@pytest.mark.parametrize("header", ["*", " * ", "\t*"])
def test_star_matches_any_version(header: str) -> None:
    tags = parse(header)
    assert tags is not None
    assert tags.any
    assert tags.matches_strong(1)
    assert tags.matches_weak(99)


@pytest.mark.parametrize(
    ("header", "strong", "weak"),
    [
        ('"1"', {"1"}, set()),
        ('W/"1"', set(), {"1"}),
        ('"1", "2"', {"1", "2"}, set()),
        ('"1",W/"2" ,  "3"', {"1", "3"}, {"2"}),
        ('  "7"  ', {"7"}, set()),
        ('""', {""}, set()),
        ('"a,b"', {"a,b"}, set()),
        ('"1",', {"1"}, set()),
    ],
)
def test_lists_and_weak_tags(header: str, strong: set[str], weak: set[str]) -> None:
    assert parse(header) == ETagSet(False, frozenset(strong), frozenset(weak))


def test_if_match_compares_strongly_and_if_none_match_weakly() -> None:
    weak = parse('W/"3"')
    assert weak is not None
    assert not weak.matches_strong(3)
    assert weak.matches_weak(3)
    strong = parse('"3"')
    assert strong is not None
    assert strong.matches_strong(3)
    assert strong.matches_weak(3)
    assert not strong.matches_strong(4)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "1",
        "W/1",
        'w/"1"',
        '"1',
        '1"',
        '"1" garbage',
        "**",
        '*, "1"',
        '"1" "2"',
        "\x00",
        "W/",
        ",,,",
        "é",
    ],
)
def test_garbage_matches_nothing_rather_than_everything(header: str) -> None:
    tags = parse(header)
    assert tags is not None
    assert not tags.any
    assert tags.strong == frozenset()
    assert tags.weak == frozenset()
    assert not any(tags.matches_strong(v) or tags.matches_weak(v) for v in (0, 1, 2))


@settings(max_examples=1000, deadline=None)
@given(header=st.one_of(st.text(), st.text('"W/*, \t1234567890abc')))
def test_any_header_value_parses_without_raising(header: str) -> None:
    tags = parse(header)
    assert isinstance(tags, ETagSet)
    if tags.any:
        assert header.strip() == "*"
    for tag in tags.strong | tags.weak:
        assert f'"{tag}"' in header


@settings(max_examples=300, deadline=None)
@given(
    tags=st.lists(
        st.tuples(st.booleans(), st.text(st.characters(exclude_characters='"'), max_size=6)),
        min_size=1,
        max_size=6,
    ),
    sep=st.sampled_from([",", ", ", " ,", "\t,\t"]),
)
def test_formatted_lists_parse_back(tags: list[tuple[bool, str]], sep: str) -> None:
    header = sep.join(f'{"W/" if weak else ""}"{tag}"' for weak, tag in tags)
    parsed = parse(header)
    assert parsed is not None
    assert parsed.strong == {t for weak, t in tags if not weak}
    assert parsed.weak == {t for weak, t in tags if weak}


@settings(max_examples=300, deadline=None)
@given(versions=st.lists(st.integers(1, 10**6), max_size=5), current=st.integers(1, 10**6))
def test_strong_match_is_membership(versions: list[int], current: int) -> None:
    tags = parse(", ".join(f'"{v}"' for v in versions))
    assert tags is not None
    assert tags.matches_strong(current) == (current in versions)
    assert tags.matches_weak(current) == (current in versions)
