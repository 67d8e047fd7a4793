"""Export over HTTP: streamed NDJSON and CSV that import back unchanged."""

from __future__ import annotations

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
    assert body == "".join(f'{{"code": "{c}"}}\n' for c in codes)


async def test_empty_dataset_exports_nothing_or_a_header(client: httpx.AsyncClient) -> None:
    ds = await rich_dataset(client)
    assert (await exported(client, ds, "ndjson")).content == b""
    assert (await exported(client, ds, "csv")).text.count("\r\n") == 1


@pytest.mark.parametrize("query", ["format=xml", "format=csv&format=ndjson", "limit=1"])
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
