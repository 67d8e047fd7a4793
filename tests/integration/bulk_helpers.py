"""Helpers shared by the bulk import and export tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

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
