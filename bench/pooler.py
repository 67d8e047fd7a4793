"""What a transaction-mode PgBouncer costs a GET by id: wrk -t1 -c32 against one worker.

Three servers on one database of N records, measured in interleaved rounds:

  cache      the default: asyncpg's statement cache (named prepared statements),
             PostgreSQL's cached plans
  no-cache   ENTREPOT_POOLER=transaction with both URLs the server itself: the
             statement cache off (every statement parsed and planned each time, two
             messages more), nothing else changed
  pgbouncer  ENTREPOT_POOLER=transaction through a real PgBouncer 1.18 (transaction
             mode, 5 server connections; started with tests/pgbouncer/bouncer.py)

and, with ``--statement``, the statement alone: 32 asyncpg tasks reading one row by
primary key from a pool of 10, with and without the statement cache.

    .venv/bin/python bench/pooler.py --rows 10000 --repeat 3 --duration 10
    .venv/bin/python bench/pooler.py --statement --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pgbouncer.bouncer import running

from _common import (
    DEFAULT_PG_URL,
    api_client,
    create_database,
    create_dataset,
    create_org,
    drop_database,
    load_rows,
    prepare_store,
    run_wrk,
    start_entrepot,
    wait_quiet,
)

ORG, DATASET = "bench", "pooled"


async def setup(url: str, token: str, rows: int, log_dir: Path) -> None:
    await prepare_store(url, token)
    server = start_entrepot(url, token, 1, log_dir)
    try:
        async with api_client(server, token) as client:
            await create_org(client, ORG)
            dataset_id = await create_dataset(client, ORG, DATASET, url)
    finally:
        server.stop()
    await load_rows(url, dataset_id, rows)


KEYED = "SELECT id, data::text FROM keyed WHERE id = $1"


async def _read_rate(url: str, cache: int, reads: int) -> float:
    """Reads by key a second from 32 tasks on a pool of 10 with ``statement_cache_size``."""
    pool = await asyncpg.create_pool(url, min_size=10, max_size=10, statement_cache_size=cache)
    left = reads

    async def reader() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await pool.fetchrow(KEYED, f"k{left % 10_000}")

    started = time.perf_counter()
    await asyncio.gather(*(reader() for _ in range(32)))
    rate = reads / (time.perf_counter() - started)
    await pool.close()
    return rate


async def statement_rates(url: str, repeat: int, reads: int = 20_000) -> dict[int, list[float]]:
    """The read rates with asyncpg's statement cache (100) and without (0), interleaved."""
    conn = await asyncpg.connect(url)
    await conn.execute(
        "CREATE TABLE keyed (id text PRIMARY KEY, data jsonb);"
        " INSERT INTO keyed SELECT 'k' || i, jsonb_build_object('i', i, 'name', repeat('x', 50))"
        " FROM generate_series(0, 9999) i; ANALYZE keyed"
    )
    await conn.close()
    rates: dict[int, list[float]] = {100: [], 0: []}
    for _ in range(repeat):
        for cache, found in rates.items():
            found.append(await _read_rate(url, cache, reads))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--statement", action="store_true", help="the statement alone")
    args = parser.parse_args()
    if args.statement:
        name, url = asyncio.run(create_database(DEFAULT_PG_URL, "bench_statement"))
        try:
            rates = asyncio.run(statement_rates(url, args.repeat))
        finally:
            asyncio.run(drop_database(DEFAULT_PG_URL, name))
        cached, uncached = (statistics.median(rates[c]) for c in (100, 0))
        print(f"read by key, 32 tasks, medians of {args.repeat}: cache {cached:,.0f}/s,")
        print(f"  no cache {uncached:,.0f}/s ({uncached / cached:.0%})")
        return
    executable = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    token = secrets.token_urlsafe(32)
    name, url = asyncio.run(create_database(DEFAULT_PG_URL, "bench_pooler"))
    log_dir = Path(tempfile.mkdtemp(prefix="bench-pooler-"))
    try:
        asyncio.run(setup(url, token, args.rows, log_dir))
        with running(executable, DEFAULT_PG_URL, log_dir / "pgbouncer.log") as bouncer:
            pooled = {"ENTREPOT_POOLER": "transaction", "ENTREPOT_DIRECT_DATABASE_URL": url}
            configs = {
                "cache": {},
                "no-cache": {**pooled, "ENTREPOT_DATABASE_URL": url},
                "pgbouncer": {**pooled, "ENTREPOT_DATABASE_URL": bouncer.url(url)},
            }
            rps: dict[str, list[float]] = {label: [] for label in configs}
            p50: dict[str, list[float]] = {label: [] for label in configs}
            for _ in range(args.repeat):
                for label, env in configs.items():
                    server = start_entrepot(url, token, 1, log_dir, env)
                    try:
                        wait_quiet(threshold=30, max_wait=30)
                        result = run_wrk(
                            server.base_url,
                            "get-random",
                            path=f"/v1/datasets/{DATASET}/records/sku-",
                            token=token,
                            count=args.rows,
                            duration=args.duration,
                        )
                    finally:
                        server.stop()
                    if result.errors or result.non_2xx:
                        raise RuntimeError(f"{label}: {result}")
                    rps[label].append(result.rps)
                    p50[label].append(result.p50_ms)
                    print(f"  {label}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms")
        base = statistics.median(rps["cache"])
        print(f"\nGET by id, {args.rows:,} records, wrk -t1 -c32, medians of {args.repeat}:")
        for label in configs:
            median = statistics.median(rps[label])
            print(
                f"  {label:10} {median:8,.0f} req/s  {median / base:6.0%}  "
                f"p50 {statistics.median(p50[label]):.2f} ms"
            )
    finally:
        asyncio.run(drop_database(DEFAULT_PG_URL, name))
        shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
