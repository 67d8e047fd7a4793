"""Cost of admitting a request: the rate limiter beside the floor of its backend.

In one process: a migrated fresh database, one plan roomy enough that nothing
is refused, and an app principal on it. Timed, interleaved in rounds:

  local admit     RateLimiter.admit with no Redis (bucket + quota bookkeeping)
  redis admit     RateLimiter.admit through the Lua script on Redis
  redis PING      one round trip to the same Redis: the floor of any limiter
                  that holds limits across replicas

Reported per operation (median of the rounds) and as ratios: redis admit over
PING says what the script and our bookkeeping add to the unavoidable round trip.

    .venv/bin/python bench/limits.py --ops 20000 --append
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from redis.asyncio import Redis

from _common import (
    DEFAULT_PG_URL,
    RESULTS,
    create_database,
    drop_database,
    machine,
    prepare_store,
    publish,
)
from entrepot.limits.limiter import RateLimiter
from entrepot.limits.plans import PlanBook
from entrepot.principal import Principal

ROUNDS = 5


async def per_op(ops: int, call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    for _ in range(ops):
        await call()
    return (time.perf_counter() - started) / ops * 1e6


async def run(args: argparse.Namespace) -> dict[str, float]:
    name, url = await create_database(args.pg, "bench_limits")
    redis = Redis.from_url(args.redis)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        await prepare_store(url, "ent_bench_" + uuid.uuid4().hex)
        await pool.execute(
            "INSERT INTO plans (name, rate_per_second, burst, daily_quota, monthly_quota) "
            "VALUES ('bench', 1e9, 1000000000, 1000000000, 1000000000)"
        )
        app_id = uuid.uuid4()
        principal = Principal(
            "app", f"app:{app_id}", "key:bench", frozenset(), app_id=app_id, plan="bench"
        )
        local = RateLimiter(pool, PlanBook(pool))
        remote = RateLimiter(pool, PlanBook(pool), redis)
        await local.admit(principal)
        await remote.admit(principal)
        timings: dict[str, list[float]] = {"local": [], "redis": [], "ping": []}
        for _ in range(ROUNDS):
            timings["local"].append(await per_op(args.ops, lambda: local.admit(principal)))
            timings["redis"].append(await per_op(args.ops, lambda: remote.admit(principal)))
            timings["ping"].append(await per_op(args.ops, redis.ping))
        assert remote._redis_down_until == 0.0, "Redis failed during the run"
        return {k: statistics.median(v) for k, v in timings.items()}
    finally:
        await pool.close()
        await redis.aclose()
        await drop_database(args.pg, name)


def report(result: dict[str, float], args: argparse.Namespace) -> str:
    where = f"{machine()}; load {args.load:.2f}"
    return "\n".join(
        [
            "",
            f"### Rate limiter: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({where})",
            "",
            f"`.venv/bin/python bench/limits.py --ops {args.ops}` "
            f"(median of {ROUNDS} interleaved rounds)",
            "",
            "| operation | µs/op | ratio |",
            "|---|---:|---:|",
            f"| local admit (no Redis) | {result['local']:.1f} | |",
            f"| redis admit (Lua script) | {result['redis']:.1f} | "
            f"{result['redis'] / result['ping']:.2f}x PING |",
            f"| redis PING (baseline) | {result['ping']:.1f} | 1.00 |",
            "",
        ]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20_000, help="operations per round and kind")
    parser.add_argument("--pg", default=DEFAULT_PG_URL, help="a superuser PostgreSQL URL")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--append", action="store_true", help=f"append to {RESULTS.name}")
    args = parser.parse_args()
    args.load = os.getloadavg()[0]
    text = report(await run(args), args)
    publish(text, args.append)


if __name__ == "__main__":
    asyncio.run(main())
