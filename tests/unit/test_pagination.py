"""Opaque cursors and the shared limit rules: round trips, garbage, replay."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    decode_cursor,
    encode_cursor,
    fingerprint,
    parse_limit,
)
from entrepot.problems import BadRequest

# Cursor positions hold PostgreSQL text renderings of sort values and ids.
positions = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8")),
        st.integers(-(2**63), 2**63 - 1),
        st.none(),
        st.booleans(),
    ),
    max_size=9,
)
fingerprints = st.text("0123456789abcdef", min_size=16, max_size=16)


@settings(max_examples=300, deadline=None)
@given(position=positions, fp=fingerprints)
def test_cursor_round_trips(position: list[Any], fp: str) -> None:
    cursor = encode_cursor(position, fp)
    assert cursor.isascii()
    assert not set(cursor) & set("=+/")  # URL-safe, unpadded
    assert decode_cursor(cursor, fp) == position


@settings(max_examples=300, deadline=None)
@given(position=positions, fp=fingerprints, other=fingerprints)
def test_cursor_is_refused_for_another_query(position: list[Any], fp: str, other: str) -> None:
    cursor = encode_cursor(position, fp)
    if other == fp:
        assert decode_cursor(cursor, other) == position
    else:
        with pytest.raises(BadRequest):
            decode_cursor(cursor, other)


def test_fingerprint_depends_on_every_part() -> None:
    base = fingerprint([("price", "lt", "5")], [("name", False)])
    assert base == fingerprint([("price", "lt", "5")], [("name", False)])
    assert (
        len(
            {
                base,
                fingerprint([("price", "lte", "5")], [("name", False)]),
                fingerprint([("price", "lt", "6")], [("name", False)]),
                fingerprint([("price", "lt", "5")], [("name", True)]),
                fingerprint([("price", "lt", "5")], []),
                fingerprint([], [("name", False)]),
            }
        )
        == 6
    )


def _decodes_or_bad_request(cursor: str, fp: str) -> None:
    try:
        position = decode_cursor(cursor, fp)
    except BadRequest as exc:
        refused = exc
    else:
        assert isinstance(position, list)
        return
    assert refused.body()["status"] == 400
    assert refused.errors == [{"path": "query:cursor", "message": "invalid cursor"}]


@settings(max_examples=500, deadline=None)
@given(cursor=st.text(), fp=fingerprints)
def test_any_string_decodes_or_is_a_bad_request(cursor: str, fp: str) -> None:
    _decodes_or_bad_request(cursor, fp)


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=300), fp=fingerprints)
def test_any_base64_payload_decodes_or_is_a_bad_request(payload: bytes, fp: str) -> None:
    cursor = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    _decodes_or_bad_request(cursor, fp)


@settings(max_examples=300, deadline=None)
@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=10,
    ),
    fp=fingerprints,
)
def test_any_json_payload_decodes_or_is_a_bad_request(doc: Any, fp: str) -> None:
    cursor = base64.urlsafe_b64encode(orjson.dumps(doc)).decode()
    _decodes_or_bad_request(cursor, fp)
    if isinstance(doc, dict):
        _decodes_or_bad_request(
            base64.urlsafe_b64encode(orjson.dumps({**doc, "q": fp})).decode(), fp
        )


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "=",
        "====",
        "!!!!",
        "é",
        "\x00",
        "\ud800",
        "a" * 4097,
        base64.urlsafe_b64encode(b"[" * 3000).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b'{"p": "not a list", "q": "0123456789abcdef"}').decode(),
        base64.urlsafe_b64encode(b'{"p": [], "q": 1}').decode(),
        base64.urlsafe_b64encode(b'{"p": [], "q": "0123456789abcdef", "x": NaN}').decode(),
    ],
)
def test_garbage_cursors_are_bad_requests(cursor: str) -> None:
    with pytest.raises(BadRequest):
        decode_cursor(cursor, "0123456789abcdef")


# --- limit ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, DEFAULT_LIMIT), ("", DEFAULT_LIMIT), ("1", 1), ("1000", 1000)]
)
def test_limit_defaults_and_bounds(raw: str | None, expected: int) -> None:
    assert parse_limit(raw) == expected


@pytest.mark.parametrize("raw", ["0", "-1", "1001", "1e3", "1.0", "ten", "9" * 5000, "\x00"])
def test_limit_out_of_range_or_not_a_number_is_bad_request(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_limit(raw)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.text(), st.integers().map(str)))
def test_any_limit_is_in_range_or_a_bad_request(raw: str) -> None:
    try:
        limit = parse_limit(raw)
    except BadRequest:
        return
    assert 1 <= limit <= MAX_LIMIT
