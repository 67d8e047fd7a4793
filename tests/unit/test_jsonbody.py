"""Strict JSON for request bodies: exact integers, finite numbers, storable strings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot import jsonbody
from entrepot.jsonbody import MAX_DEPTH, JsonBodyError


@pytest.mark.parametrize(
    "text",
    [
        "12345678901234567890123456789012345678901234567890",
        "-98765432109876543210987654321",
        "9007199254740993",  # 2**53 + 1: a float would round it
        "18446744073709551616",  # 2**64: orjson would give up or round
    ],
)
def test_big_integers_stay_exact(text: str) -> None:
    value = jsonbody.loads(f'{{"n": {text}, "a": [{text}]}}')
    assert value == {"n": int(text), "a": [int(text)]}
    assert jsonbody.dumps(value) == f'{{"n":{text},"a":[{text}]}}'


@pytest.mark.parametrize(
    "text",
    ["NaN", "Infinity", "-Infinity", '{"a": NaN}', "[1e400]", "-1e400", '{"x": 1E+999}'],
)
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(JsonBodyError):
        jsonbody.loads(text)


def test_dumps_refuses_non_finite_floats() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        jsonbody.dumps({"x": float("nan")})


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"a": "x\\u0000y"}', "/a"),
        ('{"a": {"b/c": ["ok", "\\u0000"]}}', "/a/b~1c/1"),
        ('{"m~n": "\\ud800"}', "/m~0n"),
        ('{"a": ["\\udc00x"]}', "/a/0"),
        ('{"a": {"b\\u0000": 1}}', "/a"),  # a bad key is reported at its object
        ('{"a": {"\\udfff": 1}}', "/a"),
    ],
)
def test_unstorable_strings_are_refused_with_a_json_pointer(text: str, path: str) -> None:
    with pytest.raises(JsonBodyError) as err:
        jsonbody.loads(text)
    assert err.value.path == path


@pytest.mark.parametrize(
    "raw",
    [b'"\xed\xa0\x80"', b'{"a": "\xed\xb0\x80"}'],  # surrogates smuggled as (CESU-8) bytes
)
def test_surrogates_in_raw_bytes_are_refused(raw: bytes) -> None:
    with pytest.raises(JsonBodyError):
        jsonbody.loads(raw)


def test_paired_surrogate_escapes_are_a_normal_character() -> None:
    assert jsonbody.loads('"\\ud83d\\ude00"') == "\U0001f600"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 2, 1000, 100_000])
def test_deep_nesting_is_refused(depth: int) -> None:
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        with pytest.raises(JsonBodyError):
            jsonbody.loads(text)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = MAX_DEPTH + 1  # the root is level 0
    assert jsonbody.loads("[" * depth + "]" * depth) is not None


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"{'a': 1}", b"\xff\xfe\x00", b"\x80", b"[1,]", b'{"a" 1}', b"01", b"--1", b"1 2"],
)
def test_malformed_bodies_raise_json_body_error(raw: bytes) -> None:
    with pytest.raises(JsonBodyError):
        jsonbody.loads(raw)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_any_input_parses_or_raises_json_body_error(raw: bytes | str) -> None:
    try:
        jsonbody.loads(raw)
    except JsonBodyError as exc:
        path = exc.path
    else:
        return
    assert path is None or path == "" or path.startswith("/")


storable_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**60), max_value=10**60),
        st.floats(allow_nan=False, allow_infinity=False),
        storable_text,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(storable_text, inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(value=json_values)
def test_storable_values_round_trip(value: Any) -> None:
    text = jsonbody.dumps(value)
    assert jsonbody.loads(text) == value
    assert jsonbody.loads(text.encode("utf-8")) == value
    assert json.loads(text) == value


unstorable = st.one_of(
    st.text(min_size=1).map(lambda s: s + "\x00"),
    st.sampled_from(["\ud800", "a\udfffb", "\udbff"]),
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, bad=unstorable, where=st.sampled_from(["value", "key", "nested"]))
def test_unstorable_strings_anywhere_are_found(value: Any, bad: str, where: str) -> None:
    if where == "value":
        doc: Any = {"ok": value, "bad": bad}
        expected = "/bad"
    elif where == "key":
        doc = {"ok": value, "o": {bad: 1}}
        expected = "/o"
    else:
        doc = [value, {"x": [bad]}]
        expected = "/1/x/0"
    text = json.dumps(doc)  # ASCII escapes: \u0000 and lone \udXXX survive as text
    with pytest.raises(JsonBodyError) as err:
        jsonbody.loads(text)
    assert err.value.path == expected


def outcome(parse: Any, raw: bytes | str) -> tuple[str, Any]:
    """What a parser makes of ``raw``, types included (1 and 1.0 differ)."""
    try:
        return "value", json.dumps(parse(raw), sort_keys=False)
    except JsonBodyError as exc:
        return "error", (exc.message, exc.path)


@settings(max_examples=500, deadline=None)
@given(value=json_values, ascii_only=st.booleans(), as_bytes=st.booleans())
def test_the_fast_parser_agrees_with_the_exact_one_on_documents(
    value: Any, ascii_only: bool, as_bytes: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    raw: bytes | str = text.encode("utf-8") if as_bytes else text
    assert outcome(jsonbody.loads, raw) == outcome(jsonbody._loads_exactly, raw)


@settings(max_examples=500, deadline=None)
@given(
    raw=st.one_of(
        st.binary(max_size=120),
        st.text(max_size=120),
        st.from_regex(r'\A[\[{]?"?[-0-9.eE+]{0,30}"?(,"\\u0000"|,"\\ud800"|,NaN|,1e999)?[\]}]?\Z'),
    )
)
def test_the_fast_parser_agrees_with_the_exact_one_on_anything(raw: bytes | str) -> None:
    assert outcome(jsonbody.loads, raw) == outcome(jsonbody._loads_exactly, raw)


@settings(max_examples=500, deadline=None)
@given(value=json_values)
def test_dumps_parsed_writes_what_dumps_writes(value: Any) -> None:
    fast, exact = jsonbody.dumps_parsed(value), jsonbody.dumps(value)
    assert json.dumps(json.loads(fast)) == json.dumps(json.loads(exact))


# --- repeated keys ---------------------------------------------------------------------

colon_text = st.text(st.sampled_from(["a", ":", '"', "\\", "é", " "]), max_size=6)
documents = st.recursive(
    st.one_of(st.none(), st.integers(), colon_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(colon_text, inner, max_size=4)
    ),
    max_leaves=15,
)


def render(value: Any, spaced: bool, escape_colons: bool) -> str:
    """JSON text of ``value``, written as clients do: spaced or not, colons escaped or not."""
    if isinstance(value, dict):
        colon, comma = (" : ", " , ") if spaced else (":", ",")
        members = (
            render(k, spaced, escape_colons) + colon + render(v, spaced, escape_colons)
            for k, v in value.items()
        )
        return "{" + comma.join(members) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(v, spaced, escape_colons) for v in value) + "]"
    text = json.dumps(value)
    return text.replace(":", "\\u003a") if escape_colons and isinstance(value, str) else text


def objects(value: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every object in ``value`` with a key, and its JSON Pointer."""
    found: list[tuple[str, dict[str, Any]]] = []
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    if isinstance(value, dict) and value:
        found.append((path, value))
    for key, child in children:
        found += objects(child, f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}")
    return found


@settings(max_examples=500, deadline=None)
@given(value=documents, spaced=st.booleans(), escape_colons=st.booleans(), as_bytes=st.booleans())
def test_documents_without_repeated_keys_are_accepted(
    value: Any, spaced: bool, escape_colons: bool, as_bytes: bool
) -> None:
    text = render(value, spaced, escape_colons)
    assert jsonbody.loads(text.encode() if as_bytes else text) == value


@settings(max_examples=500, deadline=None)
@given(
    value=documents.filter(lambda v: bool(objects(v))),
    pick=st.integers(min_value=0),
    spaced=st.booleans(),
    escape_colons=st.booleans(),
)
def test_a_repeated_key_anywhere_is_refused_with_its_path(
    value: Any, pick: int, spaced: bool, escape_colons: bool
) -> None:
    where, target = objects(value)[pick % len(objects(value))]
    key = list(target)[pick % len(target)]
    target["\x00repeat"] = None  # a marker member, rendered as the repeated key
    text = render(value, spaced, escape_colons).replace(
        json.dumps("\x00repeat"), json.dumps(key).replace(":", "\\u003a" if escape_colons else ":")
    )
    with pytest.raises(JsonBodyError) as err:
        jsonbody.loads(text)
    assert err.value.syntax
    assert err.value.path == f"{where}/{key.replace('~', '~0').replace('/', '~1')}"
    assert (
        err.value.message
        == f"the key {json.dumps(key, ensure_ascii=False)} appears more than once in one object"
    )


def test_malformed_json_is_described_in_our_words() -> None:
    with pytest.raises(JsonBodyError) as err:
        jsonbody.loads(b'{"a": 1,\n "b" 2}')
    assert err.value.message == "':' was expected after the property name (line 2, column 6)"
    assert err.value.syntax
    assert err.value.path is None
