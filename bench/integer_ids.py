"""What numeric order costs an integer-keyed dataset: inserts and list pages, in SQL.

Two partitions shaped like ``records`` hold the same rows; one has only the
primary key (ids ordered as text, as before migration 0010), the other also
the index on ``(id::numeric)`` that integer-keyed datasets now get. Writers
insert one record per statement (autocommit, as a record POST does) into each
in turn, and a reader fetches 51-row keyset pages from random positions,
ordered by ``id`` on one and ``(id::numeric)`` on the other. Rounds alternate
the two sides; the medians are printed. GET by id is the same statement on
both (the primary key), so it is not measured here.

    python bench/integer_ids.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import time

import asyncpg

TABLES = {"text": "id", "numeric": "(id::numeric)"}


async def setup(conn: asyncpg.Connection, rows: int) -> None:
    for name in TABLES:
        await conn.execute(
            f"CREATE TABLE r_{name} (dataset_id bigint NOT NULL, id text NOT NULL, "
            "version bigint NOT NULL, data jsonb NOT NULL, created_at timestamptz NOT NULL "
            "DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (dataset_id, id))"
        )
        await conn.execute(
            f"INSERT INTO r_{name} SELECT 1, g::text, 1, jsonb_build_object('n', g, 'name', "
            f"'row ' || g) FROM generate_series(1, {rows}) g"
        )
    await conn.execute("CREATE INDEX ON r_numeric ((id::numeric))")
    for name in TABLES:
        await conn.execute(f"VACUUM ANALYZE r_{name}")


async def inserts(url: str, table: str, start: int, count: int, tasks: int) -> float:
    """Records inserted per second by ``tasks`` connections, one statement each."""
    sql = (
        f"INSERT INTO r_{table} (dataset_id, id, version, data) VALUES (1, $1, 1, $2::jsonb) "
        "ON CONFLICT DO NOTHING RETURNING id, version, data::text, created_at, updated_at"
    )
    conns = [await asyncpg.connect(url) for _ in range(tasks)]

    async def work(conn: asyncpg.Connection, offset: int) -> None:
        for n in range(start + offset, start + count, tasks):
            await conn.fetchrow(sql, str(n), f'{{"n": {n}, "name": "row {n}"}}')

    began = time.perf_counter()
    await asyncio.gather(*(work(c, i) for i, c in enumerate(conns)))
    elapsed = time.perf_counter() - began
    for conn in conns:
        await conn.close()
    return count / elapsed


async def pages(conn: asyncpg.Connection, table: str, rows: int, count: int) -> float:
    """Median milliseconds of a 51-row keyset page after a random id."""
    order = TABLES[table]
    cast = "::numeric" if table == "numeric" else ""
    sql = (
        f"SELECT id, version, data::text, created_at, updated_at FROM r_{table} "
        f"WHERE dataset_id = 1 AND {order} > $1{cast} ORDER BY {order} LIMIT 51"
    )
    rng = random.Random(7)
    times = []
    for _ in range(count):
        after = rng.randrange(rows)
        position = after if table == "numeric" else str(after)
        began = time.perf_counter()
        await conn.fetch(sql, position)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


async def main(url: str, rows: int, rounds: int, batch: int, tasks: int) -> None:
    admin = await asyncpg.connect(url)
    name = f"bench_ids_{secrets.token_hex(4)}"
    await admin.execute(f"CREATE DATABASE {name}")
    db_url = url.rsplit("/", 1)[0] + "/" + name
    try:
        conn = await asyncpg.connect(db_url)
        await setup(conn, rows)
        results: dict[str, dict[str, list[float]]] = {t: {"ins": [], "page": []} for t in TABLES}
        next_id = rows + 1
        for round_ in range(rounds):
            # Who goes first alternates.
            for table in list(TABLES)[:: 1 if round_ % 2 == 0 else -1]:
                results[table]["ins"].append(await inserts(db_url, table, next_id, batch, tasks))
                results[table]["page"].append(await pages(conn, table, rows, 2000))
            next_id += batch
        await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    for table in TABLES:
        ins = statistics.median(results[table]["ins"])
        page = statistics.median(results[table]["page"])
        print(f"{table:8} inserts/s {ins:8.0f}   page p50 {page:.3f} ms")
    text, numeric = results["text"], results["numeric"]
    ins_ratio = statistics.median(numeric["ins"]) / statistics.median(text["ins"])
    page_ratio = statistics.median(numeric["page"]) / statistics.median(text["page"])
    print(f"numeric/text: inserts {ins_ratio:.2f}, page time {page_ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4_000)
    parser.add_argument("--tasks", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.rows, args.rounds, args.batch, args.tasks))
