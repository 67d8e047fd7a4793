"""No bulk client, however slow or greedy, starves the others (a real server, raw sockets).

One app opens 16 exports it never reads and 16 imports whose bodies trickle
in; meanwhile another app's callers read records. The greedy app gets its
share of bulk work (two operations) and 429 for the rest; what it holds is
cut once it falls below the pace floor (ENTREPOT_BULK_STALL_SECONDS, 2 s
here); the other callers never wait on it. Latency figures live in
``bench/starvation.py``; this holds the behaviour.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.e2e.slow_clients import Held, stalled_export, trickling_import
from tests.e2e.test_serve import serving

pytestmark = pytest.mark.slow

ADMIN = "e2e-starvation-admin-" + uuid.uuid4().hex
STALL_SECONDS = 2.0
RECORDS = 100_000  # an export far larger than the socket buffers it must fill
SCHEMA = {
    "type": "object",
    "properties": {"sku": {"type": "string"}, "name": {"type": "string"}},
    "required": ["sku"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fresh_database: object) -> Iterator[str]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_POOL_MAX_SIZE": "4",
        "ENTREPOT_BULK_POOL_SIZE": "3",
        "ENTREPOT_BULK_PER_CALLER": "2",
        "ENTREPOT_BULK_STALL_SECONDS": str(STALL_SECONDS),
    }
    with serving(env, log=tmp_path_factory.mktemp("starve") / "serve.log") as base:
        asyncio.run(_seed(base, url))
        yield base


async def _seed(base: str, url: str) -> None:
    async with httpx.AsyncClient(base_url=base, headers=_auth(ADMIN)) as admin:
        assert (await admin.post("/v1/orgs", json={"name": "o", "title": "O"})).status_code == 201
        plan = {"rate_per_second": 100_000, "burst": 100_000}  # the readers read flat out
        assert (await admin.patch("/v1/plans/default", json=plan)).status_code == 200
        created = await admin.post(
            "/v1/datasets",
            json={
                "name": "things",
                "org": "o",
                "title": "T",
                "schema": SCHEMA,
                "primary_key": "sku",
            },
        )
        assert created.status_code == 201, created.text
    conn = await asyncpg.connect(url)
    try:
        dataset_id = await conn.fetchval("SELECT id FROM datasets WHERE name = 'things'")
        await conn.execute(
            f"INSERT INTO records_{int(dataset_id)} (dataset_id, id, version, data) "
            f"SELECT {int(dataset_id)}, 's' || g, 1, "
            "jsonb_build_object('sku', 's' || g, 'name', repeat('n', 80)) "
            "FROM generate_series(1, $1::int) g",
            RECORDS,
        )
    finally:
        await conn.close()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _app_key(admin: httpx.AsyncClient) -> str:
    app = await admin.post(
        "/v1/apps",
        json={"org": "o", "name": uuid.uuid4().hex, "scopes": ["records:read", "records:write"]},
    )
    assert app.status_code == 201, app.text
    key = await admin.post(f"/v1/apps/{app.json()['id']}/keys", json={"name": "k"})
    return str(key.json()["key"])


async def _ordinary_reads(base: str, key: str, seconds: float) -> Counter[str]:
    """Four callers reading records for ``seconds``; what they got ("timeout" included)."""
    got: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def caller(i: int) -> None:
        async with httpx.AsyncClient(base_url=base, headers=_auth(key), timeout=2.0) as http:
            n = i
            while time.monotonic() < deadline:
                n = (n * 7919 + 1) % RECORDS + 1
                try:
                    response = await http.get(f"/v1/datasets/things/records/s{n}")
                except httpx.TimeoutException:
                    got["timeout"] += 1
                    continue
                got[str(response.status_code)] += 1

    await asyncio.gather(*(caller(i) for i in range(4)))
    return got


async def test_stalled_exports_and_trickling_imports_starve_no_one(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    async with httpx.AsyncClient(base_url=server, headers=_auth(ADMIN), timeout=30) as admin:
        greedy, reader = await _app_key(admin), await _app_key(admin)

    holds: list[asyncio.Future[Held]] = []
    kinds: list[str] = []
    for _ in range(16):  # interleaved, so both kinds are among the admitted ones
        holds.append(asyncio.ensure_future(trickling_import(port, greedy, "things", 20)))
        holds.append(asyncio.ensure_future(stalled_export(port, greedy, "things", 20)))
        kinds += ["import", "export"]
        await asyncio.sleep(0.02)

    reads = await _ordinary_reads(server, reader, 6.0)
    outcomes = list(zip(kinds, await asyncio.gather(*holds), strict=True))

    assert set(reads) == {"200"}, reads  # never a timeout, never a refusal
    assert reads["200"] > 100
    answers = Counter(f"{kind} {held.answer}" for kind, held in outcomes)
    admitted = [(kind, held) for kind, held in outcomes if held.answer != "429"]
    assert len(admitted) == 2, answers  # the greedy app's share of bulk work
    assert answers["import 429"] + answers["export 429"] == 30, answers
    for kind, held in admitted:
        assert held.answer == ("408" if kind == "import" else "200"), answers
        assert held.cut_after is not None, (kind, held)
        assert STALL_SECONDS <= held.cut_after <= 3 * STALL_SECONDS + 2, (kind, held)

    # What was cut is released: the greedy app's next export runs whole.
    async with httpx.AsyncClient(base_url=server, headers=_auth(greedy), timeout=60) as http:
        whole = await http.get("/v1/datasets/things/export")
    assert whole.status_code == 200
    assert whole.content.count(b"\n") == RECORDS
