"""Flat memory for bulk import and export, measured.

Generates a large NDJSON stream on the fly (never held whole), POSTs it to
``/v1/datasets/{ds}/import`` as a streamed (chunked) request body, and samples
the server worker's RSS every 0.2 s with psutil; then streams the export back
(discarding the bytes) and samples again. Target: the worker stays under
about 200 MB whatever the size.

    .venv/bin/python bench/import_memory.py --size-mb 1024

Everything runs on 127.0.0.1 against a fresh database that is dropped at the
end; the server is stopped with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson

from _common import (
    DEFAULT_PG_URL,
    RssSampler,
    Server,
    aiter_chunks,
    api_client,
    create_database,
    create_dataset,
    create_org,
    drop_database,
    ndjson_chunks,
    prepare_store,
    record,
    route_exists,
    start_entrepot,
)

TARGET_MB = 200.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=float, default=1024, help="NDJSON body size (1024)")
    parser.add_argument(
        "--record-bytes", type=int, default=500, help="approximate bytes a record line (500)"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (1)")
    parser.add_argument("--no-export", action="store_true", help="skip the export half")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="admin URL of the PostgreSQL")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server (repeatable)",
    )
    return parser.parse_args(argv)


def plan(size_mb: float, record_bytes: int) -> tuple[int, str]:
    """How many records, and what padding, make about ``size_mb`` of NDJSON."""
    base = len(orjson.dumps(record(5_000_000, "m-", "x"))) + 1
    pad = "x" * max(1, record_bytes - base + 1)
    line = len(orjson.dumps(record(5_000_000, "m-", pad))) + 1
    return max(1, int(size_mb * 2**20 / line)), pad


async def measure(args: argparse.Namespace, url: str, token: str, log_dir: Path) -> int:
    env = dict(item.partition("=")[::2] for item in args.server_env)
    server: Server = start_entrepot(url, token, args.workers, log_dir, env)
    try:
        if not await route_exists(server, "post", "/v1/datasets/{ds}/import"):
            print("SKIPPED: the server has no POST /v1/datasets/{ds}/import yet.")
            return 0
        async with api_client(server, token) as client:
            await create_org(client, "mem")
            await create_dataset(client, "mem", "big", url)
        count, pad = plan(args.size_mb, args.record_bytes)
        await asyncio.sleep(1.0)
        idle = max(server.rss_mb())
        print(f"worker idle RSS {idle:.0f} MB; importing {count:,} records (~{args.size_mb:g} MB)")

        sent = 0

        def counted() -> Iterator[bytes]:
            nonlocal sent
            for chunk in ndjson_chunks(count, "m-", pad=pad):
                sent += len(chunk)
                yield chunk

        async with api_client(server, token, timeout=None) as client:
            with RssSampler(server.worker_pids()) as imp:
                started = time.perf_counter()
                response = await client.post(
                    "/v1/datasets/big/import",
                    content=aiter_chunks(counted()),
                    headers={"Content-Type": "application/x-ndjson"},
                )
                import_s = time.perf_counter() - started
        if response.status_code != 200:
            print(f"import failed: {response.status_code} {response.text[:500]}")
            return 1
        report = response.json()
        print(
            f"import: {sent / 2**20:,.0f} MB, {report['inserted']:,} records in {import_s:.1f}s "
            f"({sent / 2**20 / import_s:.1f} MB/s, {report['inserted'] / import_s:,.0f} rows/s); "
            f"worker peak RSS {imp.peak_mb:.0f} MB ({imp.samples} samples)"
        )
        exp_peak = 0.0
        if not args.no_export:
            received = lines = 0
            async with api_client(server, token, timeout=None) as client:
                with RssSampler(server.worker_pids()) as exp:
                    started = time.perf_counter()
                    async with client.stream("GET", "/v1/datasets/big/export") as stream:
                        if stream.status_code != 200:
                            print(f"export failed: {stream.status_code}")
                            return 1
                        async for chunk in stream.aiter_raw():
                            received += len(chunk)
                            lines += chunk.count(b"\n")
                    export_s = time.perf_counter() - started
            exp_peak = exp.peak_mb
            print(
                f"export: {received / 2**20:,.0f} MB, {lines:,} lines in {export_s:.1f}s "
                f"({received / 2**20 / export_s:.1f} MB/s); worker peak RSS {exp.peak_mb:.0f} MB "
                f"({exp.samples} samples)"
            )
        await asyncio.sleep(2.0)
        after = max(server.rss_mb())
        print(f"worker RSS 2 s after: {after:.0f} MB")
        worst = max(imp.peak_mb, exp_peak)
        verdict = "met" if worst < TARGET_MB else "MISSED"
        print(f"target: worker peak < {TARGET_MB:.0f} MB: {verdict} (peak {worst:.0f} MB)")
        return 0 if verdict == "met" else 1
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    token = "ent_bench_" + secrets.token_urlsafe(24)
    db_name, url = asyncio.run(create_database(args.pg_url, "benchmem"))
    log_dir = Path(tempfile.mkdtemp(prefix=f"entrepot-{db_name}-"))
    print(f"database {db_name}; server log in {log_dir}", flush=True)
    status = 1
    try:
        asyncio.run(prepare_store(url, token))
        status = asyncio.run(measure(args, url, token, log_dir))
        return status
    finally:
        asyncio.run(drop_database(args.pg_url, db_name))
        print(f"dropped database {db_name}")
        if status == 0:
            for path in log_dir.glob("*.log"):
                path.unlink()
            with contextlib.suppress(OSError):
                log_dir.rmdir()


if __name__ == "__main__":
    raise SystemExit(main())
