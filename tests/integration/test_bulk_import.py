"""Bulk import over HTTP: NDJSON and CSV, insert and upsert, abort and skip."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from entrepot.records import bulk_repository
from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.factories import app_key, make_dataset, make_org
from tests.integration.bulk_helpers import (
    CSV,
    NDJSON,
    all_records,
    ndjson,
    post_import,
)


def product(sku: str, **fields: Any) -> dict[str, Any]:
    return {"sku": sku, "name": f"Product {sku}", "price": 1, **fields}


async def keyed_dataset(client: httpx.AsyncClient, **overrides: Any) -> str:
    name: str = (await make_dataset(client, primary_key="sku", **overrides))["name"]
    return name


async def test_ndjson_insert_creates_records_at_version_1(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    body = ndjson(product("a")) + "\n   \r\n" + ndjson(product("b", stock=2)).replace("\n", "\r\n")
    response = await post_import(client, ds, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"inserted": 2, "updated": 0, "failed": 0, "errors": []}
    stored = await all_records(client, ds)
    assert {k: (v["version"], v["data"]) for k, v in stored.items()} == {
        "a": (1, product("a")),
        "b": (1, product("b", stock=2)),
    }


async def test_without_primary_key_ids_are_generated(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client))["name"]
    response = await post_import(client, ds, ndjson(product("a"), product("a")))
    assert response.json()["inserted"] == 2
    ids = list(await all_records(client, ds))
    assert len(ids) == 2
    assert all(len(i) == 26 for i in ids)


async def test_upsert_replaces_existing_and_bumps_version(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    await client.put(f"/v1/datasets/{ds}/records/a", json=product("a"))
    await client.put(f"/v1/datasets/{ds}/records/a", json=product("a", stock=1))
    response = await post_import(
        client, ds, ndjson(product("a", price=5), product("b")), mode="upsert"
    )
    assert response.json() == {"inserted": 1, "updated": 1, "failed": 0, "errors": []}
    stored = await all_records(client, ds)
    assert stored["a"]["version"] == 3
    assert stored["a"]["data"] == product("a", price=5)
    assert stored["b"]["version"] == 1


async def test_upsert_is_refused_where_writes_need_if_match(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client, require_if_match=True)
    refused = await post_import(client, ds, ndjson(product("a")), mode="upsert")
    assert refused.status_code == 428
    inserted = await post_import(client, ds, ndjson(product("a")))
    assert inserted.json()["inserted"] == 1


async def test_upsert_repeated_id_in_one_file_later_line_wins(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    body = ndjson(product("a", stock=1), product("b"), product("a", stock=2), product("a", stock=3))
    response = await post_import(client, ds, body, mode="upsert")
    assert response.json() == {"inserted": 2, "updated": 2, "failed": 0, "errors": []}
    stored = await all_records(client, ds)
    assert stored["a"]["version"] == 3
    assert stored["a"]["data"]["stock"] == 3


async def test_insert_conflict_names_the_line_and_rolls_back(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    await client.put(f"/v1/datasets/{ds}/records/old", json=product("old"))
    body = ndjson(product("new")) + "\n" + ndjson(product("old", price=2))
    response = await post_import(client, ds, body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert (doc["inserted"], doc["updated"], doc["failed"]) == (0, 0, 1)
    assert doc["errors"] == [
        {"line": 3, "errors": [{"path": "/sku", "message": "record already exists"}]}
    ]
    stored = await all_records(client, ds)
    assert list(stored) == ["old"]
    assert stored["old"]["data"] == product("old")


async def test_insert_repeated_id_in_one_file_is_a_line_error(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    body = ndjson(product("a"), product("a", price=2), product("b"))
    response = await post_import(client, ds, body, on_error="skip")
    doc = response.json()
    assert (doc["inserted"], doc["failed"]) == (2, 1)
    assert doc["errors"][0]["line"] == 2
    assert (await all_records(client, ds))["a"]["data"]["price"] == 1


BAD_BODY = (
    ndjson(product("a"))
    + '{"sku": "b", "name": \n'  # line 2: malformed
    + ndjson(product("c"))
    + ndjson({"sku": "d", "name": 5, "price": -1})  # line 4: schema-invalid
    + "[1, 2]\n"  # line 5: not an object
    + ndjson({"name": "no key", "price": 1})  # line 6: no primary key
    + ndjson(product("e"))
)


async def test_all_or_nothing_leaves_the_dataset_unchanged(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    await client.put(f"/v1/datasets/{ds}/records/z", json=product("z"))
    response = await post_import(client, ds, BAD_BODY, mode="upsert")
    assert response.status_code == 422
    doc = response.json()
    assert doc["status"] == 422
    assert (doc["inserted"], doc["updated"], doc["failed"]) == (0, 0, 4)
    assert [e["line"] for e in doc["errors"]] == [2, 4, 5, 6]
    by_line = {e["line"]: e["errors"] for e in doc["errors"]}
    assert by_line[2] == [{"path": "", "message": "a value was expected (line 1, column 22)"}]
    assert {e["path"] for e in by_line[4]} == {"/name", "/price"}
    assert by_line[5] == [{"path": "", "message": "not an object"}]
    assert by_line[6] == [{"path": "", "message": '"sku" is required (the primary key)'}]
    assert list(await all_records(client, ds)) == ["z"]


async def test_skip_keeps_the_good_lines(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    response = await post_import(client, ds, BAD_BODY, on_error="skip")
    assert response.status_code == 200
    doc = response.json()
    assert (doc["inserted"], doc["updated"], doc["failed"]) == (3, 0, 4)
    assert [e["line"] for e in doc["errors"]] == [2, 4, 5, 6]
    assert sorted(await all_records(client, ds)) == ["a", "c", "e"]


async def test_strict_json_rules_apply_per_line(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    body = (
        '{"sku": "a", "name": "x", "price": NaN}\n'
        '{"sku": "b", "name": "nul \\u0000", "price": 1}\n' + ndjson(product("c", tags=["x"]))
    )
    doc = (await post_import(client, ds, body, on_error="skip")).json()
    assert doc["inserted"] == 1
    assert [e["line"] for e in doc["errors"]] == [1, 2]
    assert doc["errors"][1]["errors"][0]["path"] == "/name"


async def test_errors_are_capped_and_abort_stops_reading(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    body = "not json\n" * 150
    skipped = (await post_import(client, ds, body, on_error="skip")).json()
    assert skipped["failed"] == 150
    assert [e["line"] for e in skipped["errors"]] == list(range(1, 101))
    aborted = await post_import(client, ds, body)
    assert aborted.status_code == 422
    assert aborted.json()["failed"] == 100
    assert len(aborted.json()["errors"]) == 100


async def test_an_overlong_line_is_a_line_error(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.state.components.get(Settings), "max_body_bytes", 200)
    ds = await keyed_dataset(client)
    body = ndjson(product("a"), product("b", name="x" * 500), product("c"))
    doc = (await post_import(client, ds, body, on_error="skip")).json()
    assert doc["inserted"] == 2
    assert doc["errors"] == [
        {"line": 2, "errors": [{"path": "", "message": "the line is longer than 200 bytes"}]}
    ]


async def test_a_row_the_database_refuses_fails_alone(client: httpx.AsyncClient) -> None:
    # An indexed value beyond the B-tree entry limit fails inside PostgreSQL,
    # not in validation: the batch is replayed row by row to find the line.
    ds = await keyed_dataset(client, indexes=["name"])
    huge = secrets.token_hex(20_000)
    body = ndjson(product("a"), product("b", name=huge), product("c"))
    doc = (await post_import(client, ds, body, on_error="skip")).json()
    assert (doc["inserted"], doc["failed"]) == (2, 1)
    assert doc["errors"][0]["line"] == 2
    assert sorted(await all_records(client, ds)) == ["a", "c"]
    aborted = await post_import(client, ds, ndjson(product("d"), product("e", name=huge)))
    assert aborted.status_code == 422
    assert aborted.json()["errors"][0]["line"] == 2
    assert sorted(await all_records(client, ds)) == ["a", "c"]


async def test_many_batches_from_a_chunked_body(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.state.components.get(Settings), "import_batch_size", 7)
    statements: list[int] = []
    original = bulk_repository.upsert_batch

    async def counting(conn: Any, meta: Any, ids: list[str], data: list[str]) -> int:
        statements.append(len(ids))
        return await original(conn, meta, ids, data)

    monkeypatch.setattr(bulk_repository, "upsert_batch", counting)
    ds = await keyed_dataset(client)
    records = [product(f"r{i:03}", stock=i) for i in range(50)]
    records.insert(30, product("r029", stock=-1))  # repeats line 30: flushes its batch early
    payload = ndjson(*records).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 5):  # lines straddle chunks
            yield payload[start : start + 5]

    response = await post_import(client, ds, chunks(), mode="upsert")
    assert response.json() == {"inserted": 50, "updated": 1, "failed": 0, "errors": []}
    assert statements == [7, 7, 7, 7, 2, 7, 7, 7]
    stored = await all_records(client, ds)
    assert len(stored) == 50
    assert stored["r029"]["data"]["stock"] == -1
    assert stored["r029"]["version"] == 2


CSV_BODY = (
    "sku,name,price,stock,active,tags\r\n"  # 1
    'w-1,"Widget, large",9.5,3,true,"[""a"",""b""]"\r\n'  # 2
    'w-2,"Two\r\nline\nname",10,,false,\r\n'  # 3-5
    "w-3,Three,abc,1,true,\r\n"  # 6: price is not a number
    '"w-4",Four,1,2.5,maybe,\r\n'  # 7: stock not an integer, active not a boolean
    "w-5,Five,0,-7,,[]\r\n"  # 8
    'w-6,"""quoted""",1,,,\r\n'  # 9
)


async def test_csv_is_coerced_by_schema_types(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    response = await post_import(client, ds, CSV_BODY, CSV, on_error="skip")
    doc = response.json()
    assert (doc["inserted"], doc["failed"]) == (4, 2), doc
    assert doc["errors"] == [
        {"line": 6, "errors": [{"path": "/price", "message": "expected number, got 'abc'"}]},
        {
            "line": 7,
            "errors": [
                {"path": "/stock", "message": "expected integer, got '2.5'"},
                {"path": "/active", "message": "expected boolean, got 'maybe'"},
            ],
        },
    ]
    stored = {k: v["data"] for k, v in (await all_records(client, ds)).items()}
    assert stored["w-1"] == {
        "sku": "w-1",
        "name": "Widget, large",
        "price": 9.5,
        "stock": 3,
        "active": True,
        "tags": ["a", "b"],
    }
    assert stored["w-2"] == {
        "sku": "w-2",
        "name": "Two\r\nline\nname",
        "price": 10,
        "active": False,
    }
    assert stored["w-5"] == {"sku": "w-5", "name": "Five", "price": 0, "stock": -7, "tags": []}
    assert stored["w-6"]["name"] == "quoted"  # a JSON string literal in the cell


async def test_csv_line_numbers_follow_multiline_records(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    body = (
        "sku,name,price\n"
        'a,"one\n\ntwo",1\n'  # lines 2-4
        "\n"  # 5: blank
        'b,"bad"x,1\n'  # 6: junk after a closing quote
        "c,ok,1,extra\n"  # 7: too many fields
        "a,again,2\n"  # 8: already in the file
        'd,"never closed,1\n'  # 9-10
        "e,swallowed,1\n"
    )
    doc = (await post_import(client, ds, body, CSV, on_error="skip")).json()
    assert doc["inserted"] == 1
    assert [(e["line"], e["errors"][0]["message"]) for e in doc["errors"]] == [
        (6, "a closing quote must end its field"),
        (7, "expected 3 fields, got 4"),
        (8, "record already exists"),
        (9, "a quoted field is never closed"),
    ]


async def test_csv_header_must_name_schema_properties(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    response = await post_import(client, ds, "sku,colour,sku\r\nw,red,w\r\n", CSV)
    assert response.status_code == 400
    assert [e["path"] for e in response.json()["errors"]] == ["/1", "/2"]
    broken = await post_import(client, ds, 'sku,"name\r\n', CSV)
    assert broken.status_code == 400


async def test_csv_with_bom_and_charset(client: httpx.AsyncClient) -> None:
    ds = await keyed_dataset(client)
    body = "\ufeffsku,name,price\r\nü,Zoë 東京,1\r\n".encode()
    response = await post_import(client, ds, body, "text/csv; charset=utf-8")
    assert response.json()["inserted"] == 1
    assert (await all_records(client, ds))["ü"]["data"]["name"] == "Zoë 東京"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "text/csv; charset=latin-1", ""],
)
async def test_other_media_types_are_415(client: httpx.AsyncClient, content_type: str) -> None:
    ds = await keyed_dataset(client)
    response = await post_import(client, ds, ndjson(product("a")), content_type)
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "query",
    ["mode=merge", "on_error=maybe", "limit=3", "mode=insert&mode=upsert"],
)
async def test_bad_query_parameters_are_400(client: httpx.AsyncClient, query: str) -> None:
    ds = await keyed_dataset(client)
    response = await client.post(
        f"/v1/datasets/{ds}/import?{query}",
        content=ndjson(product("a")),
        headers={"Content-Type": NDJSON},
    )
    assert response.status_code == 400
    assert await all_records(client, ds) == {}


async def test_unknown_dataset_is_404_and_anonymous_is_401(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    assert (await post_import(client, "no-such-ds", ndjson(product("a")))).status_code == 404
    ds = await keyed_dataset(client)
    assert (await post_import(anon, ds, ndjson(product("a")))).status_code == 401


async def test_only_the_owning_org_may_import(client: httpx.AsyncClient, database_url: str) -> None:
    ds = await keyed_dataset(client)
    outsider = await app_key(client, (await make_org(client))["name"], ["records:write"])
    headers = {"Authorization": f"Bearer {outsider}", "Content-Type": NDJSON}
    response = await client.post(
        f"/v1/datasets/{ds}/import", content=ndjson(product("a")), headers=headers
    )
    assert response.status_code == 403
    assert await all_records(client, ds) == {}


async def test_a_client_leaving_mid_import_commits_nothing(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches are written while the next is read: a disconnect leaves no write behind."""
    monkeypatch.setattr(app.state.components.get(Settings), "import_batch_size", 5)
    ds = await keyed_dataset(client)
    chunks = [ndjson(product(f"r{i:02}")).encode() for i in range(40)]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0)  # let the batch writes run between chunks
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": True}
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/v1/datasets/{ds}/import",
        "raw_path": f"/v1/datasets/{ds}/import".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {ADMIN_TOKEN}".encode()),
            (b"content-type", NDJSON.encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    assert sent == []  # a client abort (499): nobody is there to answer
    assert await all_records(client, ds) == {}
    writes = [t for t in asyncio.all_tasks() if "_write_batch" in repr(t.get_coro())]
    assert writes == []
