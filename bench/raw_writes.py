"""The write baseline: raw asyncpg ``BEGIN; INSERT; COMMIT`` from 32 tasks.

Each task holds its own connection and commits one record per transaction
into the partitions of the datasets given (round robin), with the same
INSERT the bare ASGI baseline runs and the same record body wrk posts to
Entrepot. It is what PostgreSQL and asyncpg can do on this machine, without
HTTP, authentication, validation, audit or a feed. Prints one line
``BENCHJSON {...}`` in wrk's format (bench/wrk/bench.lua), which
bench/_common.py parses.

    python bench/raw_writes.py --url postgresql://... --datasets 12,13 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import asyncpg
import orjson


def insert_sql(dataset_id: int) -> str:
    return (
        f"INSERT INTO records_{dataset_id} (dataset_id, id, version, data) "
        f"VALUES ({dataset_id}, $1, 1, $2::jsonb) ON CONFLICT DO NOTHING "
        "RETURNING id, version, data::text, created_at, updated_at"
    )


def body(tag: str, n: int) -> str:
    return (
        f'{{"sku":"{tag}-{n}","name":"Created {n}","price":{n % 1000}.25,'
        f'"region":"eu","stock":{n % 500}}}'
    )


async def writer(
    url: str, statements: list[str], tag: str, deadline: float, latencies: list[float]
) -> int:
    conn = await asyncpg.connect(url)
    written = 0
    try:
        while time.perf_counter() < deadline:
            n = written
            started = time.perf_counter()
            async with conn.transaction():
                await conn.fetchrow(statements[n % len(statements)], f"{tag}-{n}", body(tag, n))
            latencies.append(time.perf_counter() - started)
            written += 1
    finally:
        await conn.close()
    return written


async def run(url: str, dataset_ids: list[int], tasks: int, duration: float, tag: str) -> None:
    statements = [insert_sql(i) for i in dataset_ids]
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + duration
    counts = await asyncio.gather(
        *(writer(url, statements, f"{tag}-{t}", deadline, latencies) for t in range(tasks))
    )
    seconds = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]
    result = {
        "requests": sum(counts),
        "duration_us": int(seconds * 1e6),
        "p50_us": int(ordered[len(ordered) // 2] * 1e6),
        "p99_us": int(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6),
        "mean_us": statistics.fmean(ordered) * 1e6,
        "connect": 0,
        "read": 0,
        "write": 0,
        "status": 0,
        "timeout": 0,
    }
    print("BENCHJSON " + orjson.dumps(result).decode(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="PostgreSQL URL of the benchmark database")
    parser.add_argument("--datasets", required=True, help="comma-separated dataset ids")
    parser.add_argument("--tasks", type=int, default=32, help="concurrent writers (32)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (10)")
    parser.add_argument("--tag", default="raw", help="prefix of the record ids")
    args = parser.parse_args()
    ids = [int(x) for x in args.datasets.split(",")]
    asyncio.run(run(args.url, ids, args.tasks, args.duration, args.tag))


if __name__ == "__main__":
    main()
