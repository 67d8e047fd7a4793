"""Instructions per GET by id, ours against the bare ASGI app, counted by callgrind.

wrk's req/s move by ±8 points between runs on a shared 2-core machine. A change of a
few percent in the server's own work is lost in that noise. Counting instructions is
repeatable: callgrind counts the same total for the same work, whatever else the machine
is doing. This script counts in process, with no uvicorn and no socket. Each side's
ASGI app is called directly by 32 concurrent tasks (like ``wrk -c32``) against the same
PostgreSQL, and the count is taken for two run lengths. The difference, divided by the
difference in requests, is the cost of one request, without start-up and imports.

What it leaves out: the HTTP server (httptools parsing, socket writes) and PostgreSQL's
own work, which both sides pay alike. So ours/bare here is lower than the req/s ratio
``bench/run.py`` measures through uvicorn. Use it to see whether a change to the
request path moved its cost, and use run.py for the figure.

    .venv/bin/python bench/instructions.py [--rows 20000] [--requests 300,1300]

Needs valgrind (Debian package valgrind). A count takes about 3 minutes for ours and
40 s for the bare app.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import _common

TOKEN = "bench-admin-instructions-" + "0" * 32
CONCURRENCY = 32
WARM_REQUESTS = 500
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def scope_for(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {TOKEN}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
        "extensions": {},
    }


async def get(app: App, path: str) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope_for(path), receive, send)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status}")


async def load(app: App, path_of: Callable[[int], str], rows: int, requests: int) -> None:
    """``requests`` GETs of random records from CONCURRENCY tasks."""
    rng = random.Random(7)

    async def worker(start: int) -> None:
        for _ in range(start, requests, CONCURRENCY):
            await get(app, path_of(rng.randrange(1, rows + 1)))

    await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))


async def lifespan(app: App) -> tuple[asyncio.Queue[dict[str, Any]], asyncio.Task[None]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"start-up failed: {started}")
    return inbox, task


async def child(side: str, url: str, dataset_id: int, rows: int, requests: int) -> None:
    """One counted process: the app started, warmed, then ``requests`` GETs."""
    app: App
    if side == "ours":
        from entrepot import logging as entrepot_logging
        from entrepot.app import create_app
        from entrepot.settings import Settings

        entrepot_logging.configure("info", "json")  # the access line, as `entrepot serve`
        app = create_app(Settings(database_url=url, bootstrap_token=TOKEN))

        def path_of(n: int) -> str:
            return f"/v1/datasets/catalog/records/sku-{n}"
    else:
        os.environ["BASELINE_DATABASE_URL"] = url
        os.environ["BASELINE_DATASET_ID"] = str(dataset_id)
        import baseline_app

        app = baseline_app.app

        def path_of(n: int) -> str:
            return f"/records/sku-{n}"

    inbox, task = await lifespan(app)
    await load(app, path_of, rows, WARM_REQUESTS)
    await load(app, path_of, rows, requests)
    await inbox.put({"type": "lifespan.shutdown"})
    await task


def count(side: str, url: str, dataset_id: int, rows: int, requests: int) -> int:
    """Instructions callgrind counts for one child process."""
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        side,
        "--url",
        url,
        "--dataset-id",
        str(dataset_id),
        "--rows",
        str(rows),
        "--requests",
        str(requests),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=1800)
    found = re.search(r"Collected : ([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{side}: callgrind failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


async def prepare(admin_url: str, rows: int) -> tuple[str, str, int]:
    import httpx

    from entrepot.app import create_app
    from entrepot.settings import Settings

    name, url = await _common.create_database(admin_url, "bench_instr")
    await _common.prepare_store(url, TOKEN)
    app = create_app(Settings(database_url=url, bootstrap_token=TOKEN, log_level="warning"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            await _common.create_org(client, "bench")
            dataset_id = await _common.create_dataset(client, "bench", "catalog", url)
    await _common.load_rows(url, dataset_id, rows)
    return name, url, dataset_id


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--requests", default="300,1300", help="the two run lengths, counted (300,1300)"
    )
    parser.add_argument("--url", default=_common.DEFAULT_PG_URL, help="admin URL of PostgreSQL")
    parser.add_argument("--child", choices=("ours", "base"), help=argparse.SUPPRESS)
    parser.add_argument("--dataset-id", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import uvloop

        uvloop.install()
        asyncio.run(child(args.child, args.url, args.dataset_id, args.rows, int(args.requests)))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("bench/instructions.py needs valgrind (Debian package valgrind)")
    short, long = (int(n) for n in args.requests.split(","))
    name, url, dataset_id = asyncio.run(prepare(args.url, args.rows))
    try:
        per_request: dict[str, float] = {}
        for side in ("base", "ours"):
            low = count(side, url, dataset_id, args.rows, short)
            high = count(side, url, dataset_id, args.rows, long)
            per_request[side] = (high - low) / (long - short)
            print(f"{side:4}  {per_request[side]:>10,.0f} instructions per GET", flush=True)
    finally:
        asyncio.run(_common.drop_database(args.url, name))
    ratio = per_request["base"] / per_request["ours"]
    print(f"bare/ours {ratio:.2f} (in process: no HTTP server, no PostgreSQL work counted)")
    print(f"git {_common.git_version()}, {_common.machine()}, rows {args.rows}")


if __name__ == "__main__":
    main()
