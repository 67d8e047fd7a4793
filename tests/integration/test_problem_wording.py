"""Problem messages are ours: plain, precise, and free of the libraries' phrasing.

Examples first (what a caller reads for each kind of fault), then Hypothesis
properties: bad records, bad request bodies and bad dataset schemas of any
shape get messages with none of the validators' (pydantic's, jsonschema's, the
JSON parser's) phrases. Generated strings use an alphabet that cannot spell those
phrases, so a message quoting what was sent cannot trip the check by itself.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot import wording
from entrepot.fields import FIELD_NAME, SLUG
from tests.factories import make_dataset, make_org, unique
from tests.integration.bulk_helpers import post_import

LIBRARY_PHRASES = (
    "should",  # pydantic: "Input should be...", "String should match...", "List should have..."
    "is not valid under any of the schemas",
    "keyword",
    "is a required property",
    "is not of type",
    "field required",
    "extra inputs are not permitted",
    "value error",
    "json decode error",
    "expecting",
    "additional properties are not allowed",
    "is not one of",
    "failed validating",
)
JSON = {"Content-Type": "application/json"}
EXAMPLES: Counter[str] = Counter()
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RICH: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"},
        "n": {"type": "integer", "minimum": 0, "exclusiveMaximum": 10, "multipleOf": 2},
        "choice": {"enum": ["a", "b", 3]},
        "fixed": {"const": {"k": 1}},
        "either": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/positive"}]},
        "one": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        "not_text": {"not": {"type": "string"}},
        "when": {"type": "string", "format": "date-time"},
        "tags": {
            "type": "array",
            "items": {"type": "string"},
            "uniqueItems": True,
            "minItems": 1,
            "maxItems": 3,
            "contains": {"const": "x"},
        },
        "pair": {"type": "array", "prefixItems": [{"type": "string"}], "items": False},
        "meta": {
            "type": "object",
            "properties": {"x": {"type": "boolean"}},
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 2,
            "dependentRequired": {"x": ["y"]},
            "propertyNames": {"maxLength": 3},
        },
        "all": {"allOf": [{"type": "string"}, {"minLength": 3}]},
    },
    "required": ["code"],
    "$defs": {"positive": {"type": "integer", "minimum": 1}},
}

# An alphabet that cannot spell any of the phrases above (no "y", "x" only alone...).
text = st.text(st.sampled_from("abc:é \"'\\/~0"), max_size=8)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(-1e9, 1e9), text
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
record_like = st.dictionaries(
    st.one_of(st.sampled_from(list(RICH["properties"])), text), values, max_size=6
)


def messages(problem: Any) -> Iterator[str]:
    """Every text meant for people in a problem document (bulk reports included)."""
    if isinstance(problem, dict):
        for key in ("detail", "message", "title"):
            if isinstance(problem.get(key), str):
                yield problem[key]
        for error in problem.get("errors") or []:
            yield from messages(error)


def assert_our_words(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code < 400 and "errors" not in response.text:
        return
    for text_ in messages(response.json()):
        lowered = text_.lower()
        leaked = [p for p in LIBRARY_PHRASES if p in lowered]
        assert not leaked, (leaked, text_, response.request.content[:300])


@pytest.fixture(scope="module")
async def rich(client: httpx.AsyncClient) -> str:
    name: str = (await make_dataset(client, schema=RICH, primary_key="code"))["name"]
    return name


@pytest.fixture(scope="module")
async def org(client: httpx.AsyncClient) -> str:
    name: str = (await make_org(client))["name"]
    return name


@pytest.fixture(autouse=True, scope="module")
def each_property_runs_its_examples() -> Iterator[None]:
    yield
    for name, seen in EXAMPLES.items():
        assert seen >= 50, f"{name} ran {seen} examples"


# --- what a caller reads --------------------------------------------------------------


async def errors_of(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code in (400, 409, 422), response.text
    found: list[dict[str, str]] = response.json()["errors"]
    return found


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({}, {"path": "", "message": '"code" is required (the primary key)'}),
        ({"n": 2, "code": "ab", "choice": "a", "tags": ["x"], "x": 1}, None),
        ({"code": 5}, {"path": "/code", "message": "must be a string, got an integer"}),
        ({"code": "a"}, {"path": "/code", "message": "must be at least 2 characters long"}),
        ({"code": "ABC"}, {"path": "/code", "message": 'must match the pattern "^[a-z]+$"'}),
        ({"code": "ab", "n": -2}, {"path": "/n", "message": "must be at least 0, got -2"}),
        ({"code": "ab", "n": 12}, {"path": "/n", "message": "must be less than 10, got 12"}),
        ({"code": "ab", "n": 3}, {"path": "/n", "message": "must be a multiple of 2, got 3"}),
        (
            {"code": "ab", "choice": "z"},
            {"path": "/choice", "message": 'must be one of: "a", "b", 3'},
        ),
        ({"code": "ab", "fixed": 1}, {"path": "/fixed", "message": 'must be exactly {"k": 1}'}),
        (
            {"code": "ab", "either": 1.5},
            {
                "path": "/either",
                "message": "must match one of the allowed schemas (a string, or an integer)",
            },
        ),
        ({"code": "ab", "not_text": "s"}, {"path": "/not_text", "message": "must not be a string"}),
        (
            {"code": "ab", "when": "noon"},
            {
                "path": "/when",
                "message": "must be a date and time (RFC 3339, e.g. 2026-01-31T12:00:00Z)",
            },
        ),
        ({"code": "ab", "tags": []}, {"path": "/tags", "message": "must have at least 1 item"}),
        (
            {"code": "ab", "tags": ["x", "x"]},
            {"path": "/tags", "message": "must not repeat an item"},
        ),
        (
            {"code": "ab", "tags": ["a"]},
            {"path": "/tags", "message": 'must contain at least 1 item that is exactly "x"'},
        ),
        ({"code": "ab", "pair": ["a", 1]}, {"path": "/pair/1", "message": "is not allowed here"}),
        (
            {"code": "ab", "meta": {"z": 1}},
            {"path": "/meta/z", "message": "is not a property of the schema"},
        ),
        (
            {"code": "ab", "meta": {"x": True}},
            {"path": "/meta", "message": '"y" is required when "x" is present'},
        ),
        ({"code": "ab", "meta": {}}, {"path": "/meta", "message": "must have at least 1 property"}),
        ({"code": "ab", "all": 5}, {"path": "/all", "message": "must be a string, got an integer"}),
    ],
)
async def test_record_errors_say_what_the_value_must_be(
    client: httpx.AsyncClient, rich: str, record: dict[str, Any], expected: dict[str, str] | None
) -> None:
    response = await client.post(f"/v1/datasets/{rich}/records", json=record)
    if expected is None:  # a valid record, for contrast
        assert response.status_code == 201, response.text
        return
    assert expected in await errors_of(response)


@pytest.mark.parametrize(
    ("url", "body", "expected"),
    [
        ("/v1/orgs", [1], {"path": "", "message": "must be an object, got an array"}),
        ("/v1/orgs", {"title": "T"}, {"path": "/name", "message": "is required"}),
        (
            "/v1/orgs",
            {"name": "A B", "title": "T"},
            {
                "path": "/name",
                "message": "must be a slug: 1 to 63 lowercase letters, digits, '-' and '_', "
                "starting with a letter or a digit",
            },
        ),
        (
            "/v1/orgs",
            {"name": "ok", "title": 5},
            {"path": "/title", "message": "must be a string, got an integer"},
        ),
        (
            "/v1/orgs",
            {"name": "ok", "title": "T", "colour": "red"},
            {"path": "/colour", "message": "is not a field of this request"},
        ),
    ],
)
async def test_request_body_errors_say_what_the_field_must_be(
    client: httpx.AsyncClient, url: str, body: Any, expected: dict[str, str]
) -> None:
    assert expected in await errors_of(await client.post(url, json=body))


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ("nope", {"path": "/schema", "message": "must be an object, got a string"}),
        (
            {"type": "object", "properties": []},
            {"path": "/schema/properties", "message": "must be an object, got an array"},
        ),
        (
            {"type": "object", "properties": {"a": {"type": "text"}}},
            {
                "path": "/schema/properties/a/type",
                "message": 'must be one of the JSON types ("object", "array", "string", '
                '"integer", "number", "boolean" or "null"), or a list of them, each once',
            },
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/nowhere"}}},
            {
                "path": "/schema/properties/a/$ref",
                "message": "points to nothing in this schema: #/$defs/nowhere",
            },
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
            {
                "path": "/schema/properties/a/$ref",
                "message": "must point inside this schema ('#...')",
            },
        ),
    ],
)
async def test_schema_errors_say_what_is_wrong_where(
    client: httpx.AsyncClient, org: str, schema: Any, expected: dict[str, str]
) -> None:
    body = {"name": unique("ds"), "org": org, "title": "T", "schema": schema}
    assert expected in await errors_of(await client.post("/v1/datasets", json=body))


def test_the_described_patterns_are_the_models_patterns() -> None:
    assert {SLUG, FIELD_NAME} <= set(wording.PATTERN_WORDS)


# --- whatever is sent --------------------------------------------------------------------


@FUZZ
@given(record=st.one_of(record_like, values))
async def test_record_problems_never_use_library_words(
    client: httpx.AsyncClient, rich: str, record: Any
) -> None:
    EXAMPLES["record"] += 1
    url = f"/v1/datasets/{rich}/records"
    assert_our_words(await client.post(url, content=json.dumps(record), headers=JSON))


@FUZZ
@given(lines=st.lists(st.one_of(record_like, values), min_size=1, max_size=4))
async def test_import_problems_never_use_library_words(
    client: httpx.AsyncClient, rich: str, lines: list[Any]
) -> None:
    EXAMPLES["import"] += 1
    body = "".join(json.dumps(line) + "\n" for line in lines)
    assert_our_words(await post_import(client, rich, body, mode="upsert", on_error="skip"))


bodies = st.one_of(
    values,
    st.dictionaries(
        st.sampled_from(["name", "title", "org", "schema", "visibility", "indexes", "tags", "x"]),
        values,
        max_size=6,
    ),
)


@FUZZ
@given(
    url=st.sampled_from(["/v1/orgs", "/v1/datasets", "/v1/apps", "/v1/plans", "/v1/users"]),
    body=bodies,
)
async def test_request_body_problems_never_use_library_words(
    client: httpx.AsyncClient, url: str, body: Any
) -> None:
    EXAMPLES["body"] += 1
    assert_our_words(await client.post(url, content=json.dumps(body), headers=JSON))


schema_keywords = st.sampled_from(
    [
        "type", "properties", "required", "items", "prefixItems", "enum", "const", "minimum",
        "maximum", "minLength", "pattern", "format", "anyOf", "oneOf", "allOf", "not", "$ref",
        "$defs", "additionalProperties", "uniqueItems", "minItems", "dependentRequired",
        "propertyNames", "contains", "if", "then",
    ]
)  # fmt: skip
schemas = st.recursive(
    st.one_of(values, st.sampled_from(["string", "integer", "#/$defs/a", "^(", "date-time"])),
    lambda inner: st.dictionaries(schema_keywords, inner, max_size=4),
    max_leaves=10,
)


@FUZZ
@given(schema=schemas)
async def test_dataset_schema_problems_never_use_library_words(
    client: httpx.AsyncClient, org: str, schema: Any
) -> None:
    EXAMPLES["schema"] += 1
    if isinstance(schema, dict):
        schema = {"type": "object", **schema}
    body = {"name": unique("ds"), "org": org, "title": "T", "schema": schema}
    response = await client.post("/v1/datasets", json=body)
    assert_our_words(response)
    if response.status_code == 201:  # a valid schema: records against it are checked too
        await client.delete(f"/v1/datasets/{body['name']}")
