"""What serving records in the schema's declared order costs, in process.

The app runs in this process against a fresh database and is called as ASGI
(no HTTP client, no socket: only the server's own work is timed). The dataset
is the one every benchmark uses (bench/_common.py: sku, name, price, region,
stock, description, closed), whose declared order is not PostgreSQL's jsonb
order, so every record is reordered. The baseline is the same app with
:meth:`KeyOrder.text` passing the store's text through, as before. Rounds
alternate the two sides; medians are printed for GET by id, a 50-record list
and an NDJSON export of every record (a CSV export beside them: its columns were
always in schema order, so it is the same on both sides), and the cost of
reordering one record.

    python bench/declared_order.py [--rows 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import timeit
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

import _common
from entrepot.app import create_app
from entrepot.schema.key_order import KeyOrder
from entrepot.settings import Settings

TOKEN = "bench-admin-declared-order-" + "0" * 32
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def call(app: App, path: str, query: str = "") -> bytes:
    """One GET through the whole ASGI stack; the response body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {TOKEN}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    chunks: list[bytes] = []
    status = 0
    sent = False
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # a streaming response listens for a disconnect: none comes
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    done.set()
    if status != 200:
        raise RuntimeError(f"{path}: {status} {b''.join(chunks)[:200]!r}")
    return b"".join(chunks)


async def timed(count: int, make: Callable[[], Awaitable[bytes]]) -> float:
    """Median microseconds of ``count`` sequential calls."""
    times = []
    for _ in range(count):
        began = time.perf_counter()
        await make()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e6


async def main(rows: int, rounds: int, admin_url: str) -> None:
    name, url = await _common.create_database(admin_url, "bench_order")
    try:
        await _common.prepare_store(url, TOKEN)
        settings = Settings(database_url=url, bootstrap_token=TOKEN, log_level="warning")
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", headers=headers
            ) as client:
                await _common.create_org(client, "bench")
                dataset_id = await _common.create_dataset(client, "bench", "catalog", url)
            await _common.load_rows(url, dataset_id, rows)
            rng = random.Random(3)
            ids = [f"sku-{rng.randrange(1, rows + 1)}" for _ in range(5000)]
            it = iter(ids * 1000)
            base = "/v1/datasets/catalog"
            scenarios: dict[str, Callable[[], Awaitable[bytes]]] = {
                "get": lambda: call(app, f"{base}/records/{next(it)}"),
                "list": lambda: call(app, f"{base}/records", "limit=50"),
                "export": lambda: call(app, f"{base}/export", "format=ndjson"),
                "csv": lambda: call(app, f"{base}/export", "format=csv"),
            }
            counts = {"get": 2000, "list": 400, "export": 3, "csv": 3}
            original = KeyOrder.text
            results: dict[tuple[str, str], list[float]] = {}
            for round_ in range(rounds):
                sides = ["ordered", "as stored"][:: 1 if round_ % 2 == 0 else -1]
                for side in sides:
                    if side == "as stored":
                        KeyOrder.text = lambda self, data_text: data_text  # type: ignore[method-assign]
                    for scenario, make in scenarios.items():
                        await make()  # warm
                        value = await timed(counts[scenario], make)
                        results.setdefault((scenario, side), []).append(value)
                    KeyOrder.text = original  # type: ignore[method-assign]
    finally:
        await _common.drop_database(admin_url, name)

    order = KeyOrder.of(_common.RECORD_SCHEMA, list(_common.RECORD_SCHEMA["properties"]))
    text = '{"sku": "sku-1", "name": "Item 1", "price": 79.19, "stock": 1, "region": "us"}'
    per_record = timeit.timeit(lambda: order.text(text), number=100_000) / 100_000 * 1e6
    print(f"rows {rows}, rounds {rounds}; reordering one record: {per_record:.2f} us")
    for scenario in scenarios:
        ordered = statistics.median(results[(scenario, "ordered")])
        stored = statistics.median(results[(scenario, "as stored")])
        unit = "ms" if scenario in ("export", "csv") else "us"
        scale = 1000 if unit == "ms" else 1
        print(
            f"{scenario:7} ordered {ordered / scale:9.1f} {unit}   as stored "
            f"{stored / scale:9.1f} {unit}   ordered/as stored {ordered / stored:.3f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--url", default=_common.DEFAULT_PG_URL)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.rounds, args.url))
