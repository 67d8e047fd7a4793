"""Cost of a usage flush counted per dataset, against the flush before it (migration 17).

The meter adds its counts to ``usage_hourly`` in one statement every few seconds; with
the dataset in the key, the statement also looks each name up in ``datasets`` (so
names that are no dataset count as none) and groups the rows after that. Timed in
one process, on two fresh databases, interleaved in rounds:

  before     the previous statement (4-column key) on a database migrated to 16
  datasets   ``repository.add_usage`` on the latest schema, every key naming a dataset
  none       the same, every key without a dataset ('' : routes such as /v1/me)
  unknown    the same, every key naming no dataset (mapped to '', then grouped)

Each flush carries ``--keys`` distinct keys: the first of a round inserts them (a new
hour), the second adds to them (ON CONFLICT DO UPDATE, what most flushes do).
Reported as milliseconds per flush (median of the rounds) and as ratios to ``before``.

    .venv/bin/python bench/usage_flush.py --keys 2000 --append
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg

from _common import DEFAULT_PG_URL, RESULTS, create_database, drop_database, machine, publish
from entrepot.limits.repository import add_usage
from entrepot.store.migrate import migrate

ROUNDS = 7
DATASETS = 10
CLASSES = ("records.read", "records.write", "datasets", "changes")
STATUSES = (200, 404)

# The statement as it was before migration 17 (main at 2caa7f5), for the baseline.
BEFORE = """
    INSERT INTO usage_hourly (app_id, hour, endpoint_class, status, count)
    SELECT u.app_id, u.hour, u.endpoint_class, u.status, u.count
    FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::smallint[], $5::bigint[])
         WITH ORDINALITY AS u (app_id, hour, endpoint_class, status, count, n)
    WHERE EXISTS (SELECT 1 FROM apps a WHERE a.id = u.app_id)
    ORDER BY u.n
    ON CONFLICT (app_id, hour, endpoint_class, status)
    DO UPDATE SET count = usage_hourly.count + excluded.count
"""


async def seed(pool: asyncpg.Pool, apps: int, with_datasets: bool) -> list[uuid.UUID]:
    org = await pool.fetchval("INSERT INTO orgs (name, title) VALUES ('b', 'B') RETURNING id")
    ids = [uuid.uuid4() for _ in range(apps)]
    await pool.executemany(
        "INSERT INTO apps (id, org_id, name, client_id, client_secret_digest, scopes) "
        "VALUES ($1, $2, $3, $4, '\\x00', '{}')",
        [(i, org, f"a{n}", f"cid{n}") for n, i in enumerate(ids)],
    )
    if with_datasets:
        await pool.executemany(
            "INSERT INTO datasets (name, org_id, title, schema, visibility) "
            "VALUES ($1, $2, 'D', '{\"type\": \"object\"}', 'public')",
            [(f"ds-{n}", org) for n in range(DATASETS)],
        )
    return ids


def keys(apps: list[uuid.UUID], wanted: int) -> list[tuple[uuid.UUID, str, int, int]]:
    """``wanted`` distinct (app, class, status, dataset number) combinations."""
    out = []
    for app in apps:
        for cls in CLASSES:
            for status in STATUSES:
                for ds in range(DATASETS):
                    out.append((app, cls, status, ds))
                    if len(out) == wanted:
                        return out
    raise SystemExit(f"--keys {wanted} is more than {len(out)} combinations; add apps")


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def run(args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    old_name, old_url = await create_database(args.pg, "bench_usage_before")
    new_name, new_url = await create_database(args.pg, "bench_usage_after")
    try:
        await migrate(old_url, target=16)
        await migrate(new_url)
        old = await asyncpg.create_pool(old_url, min_size=1, max_size=1)
        new = await asyncpg.create_pool(new_url, min_size=1, max_size=1)
        try:
            apps = args.keys // (len(CLASSES) * len(STATUSES) * DATASETS) + 1
            batch = keys(await seed(old, apps, False), args.keys)
            new_batch = keys(await seed(new, apps, True), args.keys)
            hour = datetime(2026, 1, 1, tzinfo=UTC)
            names = {
                "datasets": lambda n: f"ds-{n}",
                "none": lambda n: "",
                "unknown": lambda n: f"gone-{n}",
            }

            def before(at: datetime) -> Callable[[], Awaitable[object]]:
                # The old table had no dataset column: the same number of distinct keys
                # is made by giving each dataset number a minute of its own instead.
                rows = [(a, at + timedelta(minutes=d), c, s, 1) for a, c, s, d in batch]
                cols = [[row[i] for row in rows] for i in range(5)]
                return lambda: old.execute(BEFORE, *cols)

            def after(kind: str, at: datetime) -> Callable[[], Awaitable[object]]:
                rows = [(a, at, c, s, names[kind](d), 1) for a, c, s, d in new_batch]
                return lambda: add_usage(new, rows)

            timings: dict[str, list[tuple[float, float]]] = {k: [] for k in ("before", *names)}
            for _ in range(ROUNDS):
                for kind in timings:
                    hour += timedelta(hours=1)
                    flush = before(hour) if kind == "before" else after(kind, hour)
                    timings[kind].append((await timed(flush), await timed(flush)))
            return {
                kind: (
                    statistics.median(t[0] for t in values),
                    statistics.median(t[1] for t in values),
                )
                for kind, values in timings.items()
            }
        finally:
            await old.close()
            await new.close()
    finally:
        await drop_database(args.pg, old_name)
        await drop_database(args.pg, new_name)


def report(result: dict[str, tuple[float, float]], args: argparse.Namespace) -> str:
    where = f"{machine()}; load {args.load:.2f}"
    base_insert, base_update = result["before"]
    rows = [
        f"| {label} | {result[kind][0]:.1f} | {result[kind][0] / base_insert:.2f} | "
        f"{result[kind][1]:.1f} | {result[kind][1] / base_update:.2f} |"
        for kind, label in (
            ("before", "before (4-column key, baseline)"),
            ("datasets", "per dataset, every key names one"),
            ("none", "per dataset, no dataset ('')"),
            ("unknown", "per dataset, names that are no dataset"),
        )
    ]
    return "\n".join(
        [
            "",
            f"## Usage counted per dataset: the flush, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"{where}. `.venv/bin/python bench/usage_flush.py --keys {args.keys}` "
            f"(median of {ROUNDS} interleaved rounds; one flush of {args.keys} distinct keys, "
            "first inserting them, then adding to them).",
            "",
            "| flush | insert ms | ratio | update ms | ratio |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2000, help="distinct keys per flush")
    parser.add_argument("--pg", default=DEFAULT_PG_URL, help="a superuser PostgreSQL URL")
    parser.add_argument("--append", action="store_true", help=f"append to {RESULTS.name}")
    args = parser.parse_args()
    args.load = os.getloadavg()[0]
    publish(report(await run(args), args), args.append)


if __name__ == "__main__":
    asyncio.run(main())
