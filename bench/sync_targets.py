"""`entrepot sync` targets side by side: how fast each loads a snapshot and applies pages.

No server: the agent's target API is driven directly with the benchmarks' records
(bench/_common.py, six properties), so what is measured is the target alone, the
part a mirror adds to the feed's own speed. For each of SQLite (a file in a temp
directory), PostgreSQL (a fresh database) and MySQL (a fresh MariaDB database with
one typed column a property):

  snapshot rows/s   N enveloped rows staged in batches of 1000, then swapped in
  apply changes/s   pages of 1000 changes (4 upserts to 1 delete), each page and its
                    checkpoint one transaction, as the agent applies the feed

and prints each against SQLite's, measured in the same run. Databases are
dropped at the end, whatever happens.

    .venv/bin/python bench/sync_targets.py --rows 100000 --pages 50 --append
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
import pymysql

from _common import DEFAULT_PG_URL, RECORD_SCHEMA, RESULTS, create_database, drop_database, record
from entrepot.sync.targets import Target, open_target

DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306"
TABLE = "products"


def mysql_admin(url: str) -> pymysql.connections.Connection[Any]:
    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )


async def measure(target: Target, rows: int, pages: int) -> tuple[float, float]:
    await target.prepare(TABLE, TABLE, RECORD_SCHEMA)
    started = time.perf_counter()
    async with target.snapshot(TABLE, TABLE) as loader:
        for start in range(0, rows, 1000):
            batch = [
                (f"sku-{n}", 1, orjson.dumps(record(n)).decode())
                for n in range(start + 1, min(start + 1000, rows) + 1)
            ]
            await loader.add(batch)
        await loader.commit(rows, "1")
    snapshot = rows / (time.perf_counter() - started)

    seq = rows
    started = time.perf_counter()
    for page in range(pages):
        changes = []
        for i in range(1000):
            seq += 1
            n = (page * 1000 + i) % rows + 1
            if i % 5 == 4:
                changes.append({"seq": seq, "op": "delete", "id": f"sku-{n}", "version": 3})
            else:
                data = {**record(n), "stock": page}
                changes.append(
                    {"seq": seq, "op": "upsert", "id": f"sku-{n}", "version": 2, "data": data}
                )
        await target.apply(TABLE, TABLE, changes, seq)
    apply = pages * 1000 / (time.perf_counter() - started)
    return snapshot, apply


async def main(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    results: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        target = await open_target(f"sqlite:///{Path(tmp) / 'mirror.db'}")
        try:
            results.append(("SQLite", *await measure(target, args.rows, args.pages)))
        finally:
            await target.close()

    name, url = await create_database(args.pg_url, "bench_sync")
    try:
        target = await open_target(url)
        try:
            results.append(("PostgreSQL", *await measure(target, args.rows, args.pages)))
        finally:
            await target.close()
    finally:
        await drop_database(args.pg_url, name)

    database = f"bench_sync_{secrets.token_hex(4)}"
    admin = mysql_admin(args.mysql_url)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        target = await open_target(f"{args.mysql_url}/{database}")
        try:
            results.append(("MySQL (MariaDB)", *await measure(target, args.rows, args.pages)))
        finally:
            await target.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()
    return results


def table(results: list[tuple[str, float, float]]) -> str:
    base_snapshot, base_apply = results[0][1], results[0][2]
    lines = [
        "| target | snapshot rows/s | vs SQLite | apply changes/s | vs SQLite |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, snapshot, apply in results:
        lines.append(
            f"| {name} | {snapshot:,.0f} | {snapshot / base_snapshot:.2f} | "
            f"{apply:,.0f} | {apply / base_apply:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    found = table(asyncio.run(main(args)))
    print(found)
    if args.append:
        stamp = time.strftime("%Y-%m-%d")
        with RESULTS.open("a") as out:
            out.write(
                f"\n## Sync targets: SQLite vs PostgreSQL vs MySQL ({stamp})\n\n"
                f"`.venv/bin/python bench/sync_targets.py --rows {args.rows} "
                f"--pages {args.pages}` on {platform.node()} ({platform.machine()}, "
                f"{platform.python_version()}); the target API alone, no server.\n\n"
                f"{found}\n"
            )
