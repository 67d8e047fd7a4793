"""Change feed throughput and latency: writers at full speed vs a long-polling follower.

A fresh database, one or two `entrepot serve` replicas on it. W writer tasks
PUT new records (each write one change) through replica A as fast as the
server acknowledges them, for D seconds; a follower long-polls the feed
(``wait``, ``limit=1000``) on replica B (A when --replicas 1) and timestamps
every change it receives. Then a follower catches up on a backlog of
changes made by a bulk import, reading pages of 1000. Reported:

  committed writes/s   acknowledged writes over the write window
  feed events/s        changes delivered to the follower over the same window
  backlog events/s     changes per second a catching-up follower reads
  commit-to-follower   follower receipt time minus the writer's acknowledgement
                       time of the same change (the ack comes just after the
                       commit, so this slightly under-states; negative
                       values, the follower winning the race, count as 0)

Everything talks to 127.0.0.1; servers are stopped and the database dropped
at the end, whatever happens.

    .venv/bin/python bench/feed.py --seconds 10 --writers 16 --replicas 2 --append
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

from _common import (
    DEFAULT_PG_URL,
    RESULTS,
    Server,
    aiter_chunks,
    api_client,
    create_database,
    create_dataset,
    create_org,
    drop_database,
    git_version,
    machine,
    ndjson_chunks,
    percentile,
    prepare_store,
    publish,
    record,
    start_entrepot,
)


async def measure(
    a: Server, b: Server, token: str, url: str, args: argparse.Namespace
) -> dict[str, float]:
    async with api_client(a, token) as admin:
        await create_org(admin, "feedbench")
        await create_dataset(admin, "feedbench", "feed-bench", url)
    path = "/v1/datasets/feed-bench"
    acked: dict[str, float] = {}
    received: dict[str, float] = {}
    seqs: list[int] = []
    limits = httpx.Limits(max_connections=args.writers + 2)
    stop_writing = asyncio.Event()
    window: dict[str, float] = {}

    async def writer(n: int, client: httpx.AsyncClient) -> None:
        i = 0
        while not stop_writing.is_set():
            sku = f"w{n}-{i}"
            r = await client.put(f"{path}/records/{sku}", json=record(i, prefix=f"w{n}-"))
            if r.status_code != 201:
                raise RuntimeError(f"write: {r.status_code} {r.text}")
            acked[sku] = time.monotonic()
            i += 1

    async def follower(client: httpx.AsyncClient) -> None:
        after = 0
        while True:
            r = await client.get(
                f"{path}/changes", params={"after": after, "limit": 1000, "wait": 5}
            )
            now = time.monotonic()
            if r.status_code != 200:
                raise RuntimeError(f"feed: {r.status_code} {r.text}")
            page = r.json()
            for change in page["changes"]:
                received[change["id"]] = now
                seqs.append(change["seq"])
            after = page["last_seq"]
            if stop_writing.is_set() and not page["changes"] and len(received) >= len(acked):
                return

    async with (
        httpx.AsyncClient(
            base_url=a.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            limits=limits,
        ) as writers_client,
        api_client(b, token, timeout=30) as follower_client,
    ):
        following = asyncio.create_task(follower(follower_client))
        tasks = [asyncio.create_task(writer(n, writers_client)) for n in range(args.writers)]
        try:
            window["start"] = time.monotonic()
            await asyncio.sleep(args.seconds)
            stop_writing.set()
            window["end"] = time.monotonic()
            await asyncio.gather(*tasks)
            await asyncio.wait_for(following, timeout=60)
        finally:
            stop_writing.set()
            for task in (*tasks, following):
                task.cancel()
            await asyncio.gather(*tasks, following, return_exceptions=True)

    backlog_per_s = await read_backlog(a, b, token, url, args.backlog)
    if seqs != list(range(1, len(seqs) + 1)):
        raise RuntimeError("the follower saw a gap or a repeat")
    if set(received) != set(acked):
        raise RuntimeError("the follower did not receive every acknowledged write")
    span = window["end"] - window["start"]
    in_window = sum(1 for t in received.values() if t <= window["end"])
    latencies = [max(0.0, received[k] - acked[k]) * 1000 for k in acked]
    return {
        "writes": len(acked),
        "writes_per_s": len(acked) / span,
        "events_per_s": in_window / span,
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "seconds": span,
        "backlog_per_s": backlog_per_s,
    }


async def read_backlog(a: Server, b: Server, token: str, url: str, count: int) -> float:
    """Events/s a follower reads when catching up on a backlog of ``count`` changes."""
    async with api_client(a, token, timeout=300) as admin:
        await create_dataset(admin, "feedbench", "feed-backlog", url)
        response = await admin.post(
            "/v1/datasets/feed-backlog/import",
            content=aiter_chunks(ndjson_chunks(count, "b-")),
            headers={"Content-Type": "application/x-ndjson"},
        )
        if response.status_code != 200:
            raise RuntimeError(f"import: {response.status_code} {response.text}")
    async with api_client(b, token, timeout=60) as reader:
        started, after, seen = time.monotonic(), 0, 0
        while True:
            r = await reader.get(
                "/v1/datasets/feed-backlog/changes", params={"after": after, "limit": 1000}
            )
            page = r.json()
            if not page["changes"]:
                break
            seen += len(page["changes"])
            after = page["last_seq"]
        elapsed = time.monotonic() - started
    if seen != count:
        raise RuntimeError(f"backlog: read {seen} of {count}")
    return seen / elapsed


def report(result: dict[str, float], args: argparse.Namespace) -> str:
    git = git_version()
    command = " ".join([".venv/bin/python", "bench/feed.py", *sys.argv[1:]])
    where = "replica A, follower on replica B" if args.replicas == 2 else "one server"
    return "\n".join(
        [
            "",
            "## Change feed",
            "",
            f"{args.writers} writer tasks PUT new records as fast as acknowledged through {where}",
            "(long poll `wait=5`, `limit=1000`); writers, follower, servers and PostgreSQL share",
            "the machine.",
            "",
            "| committed writes/s | feed events/s delivered | commit-to-follower p50 | p99 | max |",
            "|---:|---:|---:|---:|---:|",
            f"| {result['writes_per_s']:.0f} | {result['events_per_s']:.0f} "
            f"| {result['p50_ms']:.1f} ms | {result['p99_ms']:.1f} ms "
            f"| {result['max_ms']:.1f} ms |",
            "",
            f"- {result['writes']:.0f} writes in {result['seconds']:.1f} s; the follower saw "
            "every seq once, in order",
            f"- catching up on a backlog of {args.backlog} changes (pages of 1000, one "
            f"follower): {result['backlog_per_s']:.0f} events/s",
            f"- date (UTC): {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}",
            f"- command: `{command}`",
            f"- machine: {machine()}",
            f"- load average before the run: {args.load:.2f} (other work shares these cores)",
            f"- git: {git}",
            "",
        ]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--backlog", type=int, default=50_000, help="changes to catch up on")
    parser.add_argument("--replicas", type=int, choices=(1, 2), default=2)
    parser.add_argument(
        "--pg",
        default=DEFAULT_PG_URL,
        help="a superuser PostgreSQL URL, or 'embedded' for a private embedded server",
    )
    parser.add_argument("--append", action="store_true", help=f"append to {RESULTS.name}")
    args = parser.parse_args()

    args.load = os.getloadavg()[0]
    embedded = None
    if args.pg == "embedded":
        from entrepot.store.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="bench-feed-pg-")))
        args.pg = embedded.start()
    try:
        result = await run(args)
    finally:
        if embedded is not None:
            embedded.stop()
    text = report(result, args)
    publish(text, args.append)


async def run(args: argparse.Namespace) -> dict[str, float]:
    token = "bench-" + secrets.token_hex(16)  # serve refuses bootstrap tokens under 32 characters
    name, url = await create_database(args.pg, "bench_feed")
    servers: list[Server] = []
    try:
        await prepare_store(url, token)
        log_dir = Path(tempfile.mkdtemp(prefix="bench-feed-"))
        env = {"ENTREPOT_LOG_LEVEL": "warning"}
        for _ in range(args.replicas):
            servers.append(start_entrepot(url, token, 1, log_dir, env))
        result = await measure(servers[0], servers[-1], token, url, args)
    finally:
        for server in servers:
            server.stop()
        await drop_database(args.pg, name)
    return result


if __name__ == "__main__":
    asyncio.run(main())
