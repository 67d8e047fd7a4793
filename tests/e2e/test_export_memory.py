"""A Parquet or Arrow export streams with the server's memory flat: a row group at a time.

200,000 records of about 1 KB (some 200 MB of NDJSON, as much Arrow data) are
exported from a real `entrepot serve` while the test reads the server process's
RSS (psutil) at every chunk it receives. Holding the dataset, or any part of it
that grows with it, would add its size; streaming adds about two Parquet row
groups (16 MiB each), or an Arrow batch (1,000 rows), over what the first export
of the process costs once (Arrow's allocator, the Parquet library's pages), which
a small export pays first. The
1M-record figures are ``bench/export_formats.py``'s (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import psutil
import pytest

from tests.e2e.test_serve import serving_process

pytestmark = pytest.mark.slow

ADMIN = "e2e-export-memory-" + uuid.uuid4().hex
RECORDS = 200_000
SCHEMA = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "n": {"type": "integer"},
        "text": {"type": "string"},
    },
    "required": ["sku"],
}
BOUND_MB = 100  # the data is about 200 MB: holding it would cross this at once


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, fresh_database: object
) -> Iterator[tuple[str, psutil.Process]]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_POOL_MAX_SIZE": "6",
    }
    log = tmp_path_factory.mktemp("export-memory") / "serve.log"
    with serving_process(env, log=log) as (base, proc):
        asyncio.run(_seed(base, url))
        yield base, psutil.Process(proc.pid)


async def _seed(base: str, url: str) -> None:
    async with httpx.AsyncClient(base_url=base, headers=_auth()) as admin:
        assert (await admin.post("/v1/orgs", json={"name": "o", "title": "O"})).status_code == 201
        for name in ("big", "small"):
            created = await admin.post(
                "/v1/datasets",
                json={"name": name, "org": "o", "title": name, "schema": SCHEMA},
            )
            assert created.status_code == 201, created.text
    conn = await asyncpg.connect(url)
    try:
        for name, count in (("big", RECORDS), ("small", 1_000)):
            dataset_id = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", name)
            await conn.execute(
                f"INSERT INTO records_{int(dataset_id)} (dataset_id, id, version, data) "
                f"SELECT {int(dataset_id)}, 's' || g, 1, jsonb_build_object('sku', 's' || g, "
                "'n', g, 'text', repeat(md5(g::text), 30)) FROM generate_series(1, $1::int) g",
                count,
            )
    finally:
        await conn.close()


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


async def _export(base: str, name: str, fmt: str, process: psutil.Process) -> tuple[int, float]:
    """Bytes received, and the server's highest RSS (MB) seen while they arrived."""
    received, peak = 0, 0.0
    async with (
        httpx.AsyncClient(base_url=base, headers=_auth(), timeout=120) as client,
        client.stream("GET", f"/v1/datasets/{name}/export", params={"format": fmt}) as stream,
    ):
        assert stream.status_code == 200
        async for chunk in stream.aiter_raw():
            received += len(chunk)
            peak = max(peak, process.memory_info().rss / 2**20)
    return received, peak


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
async def test_a_large_export_streams_with_the_servers_memory_flat(
    server: tuple[str, psutil.Process], fmt: str
) -> None:
    base, process = server
    await _export(base, "small", fmt, process)  # what the first export of a process costs
    before = process.memory_info().rss / 2**20
    received, peak = await _export(base, "big", fmt, process)
    grown = peak - before
    print(f"{fmt}: {received / 2**20:.0f} MB sent; RSS {before:.0f} MB, peak {peak:.0f} MB")
    assert received > (10 * 2**20 if fmt == "parquet" else 150 * 2**20)
    assert grown < BOUND_MB, f"the server grew {grown:.0f} MB while streaming {fmt}"
