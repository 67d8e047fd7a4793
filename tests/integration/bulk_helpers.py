"""Helpers shared by the bulk import and export tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson

from entrepot.auth.keys import new_key
from entrepot.auth.repository import insert_key

NDJSON = "application/x-ndjson"
CSV = "text/csv"


def ndjson(*records: Any) -> str:
    return "".join(orjson.dumps(r).decode() + "\n" for r in records)


async def post_import(
    client: httpx.AsyncClient,
    ds: str,
    body: str | bytes | AsyncIterator[bytes],
    content_type: str = NDJSON,
    **params: str,
) -> httpx.Response:
    return await client.post(
        f"/v1/datasets/{ds}/import",
        content=body,
        params=params,
        headers={"Content-Type": content_type},
    )


async def all_records(client: httpx.AsyncClient, ds: str) -> dict[str, dict[str, Any]]:
    response = await client.get(f"/v1/datasets/{ds}/records", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {r["id"]: r for r in response.json()["data"]}


async def org_key(database_url: str, org_id: str, scopes: list[str]) -> str:
    """An API key of a non-admin org member (no endpoint issues them yet)."""
    key = new_key()
    conn = await asyncpg.connect(database_url)
    try:
        await insert_key(conn, key, name="test", org_id=uuid.UUID(org_id), scopes=scopes)
    finally:
        await conn.close()
    return key.secret
