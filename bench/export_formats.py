"""Export formats side by side: NDJSON (the baseline), Parquet and Arrow IPC.

Loads ``--records`` records (about ``--record-bytes`` of NDJSON each: 1M x 1 KB
is about 1 GB) straight into a fresh database, then streams each export from
one `entrepot serve` worker, sampling that worker's RSS every 0.2 s with
psutil: RSS before, peak and after, time and throughput, each format against
NDJSON measured in the same run. With ``--verify`` (the default), the Parquet
and Arrow files are read back a row group at a time (pyarrow) and compared
with the NDJSON export line by line: every id, version and value.

    .venv/bin/python bench/export_formats.py --records 1000000 --record-bytes 1000

Flat memory means the peak does not grow with the dataset: a row group
(64k rows or 32 MiB of Arrow data) at a time. Everything runs on 127.0.0.1;
the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa
import pyarrow.parquet as pq

from _common import (
    DEFAULT_PG_URL,
    RECORD_SCHEMA,
    RssSampler,
    api_client,
    create_database,
    create_dataset,
    create_org,
    drop_database,
    load_rows,
    machine,
    prepare_store,
    publish,
    start_entrepot,
)

FORMATS = ("ndjson", "parquet", "arrow")


@dataclass
class Run:
    fmt: str
    size: int
    seconds: float
    before_mb: float
    peak_mb: float
    after_mb: float

    def line(self, baseline: Run) -> str:
        rate = RECORDS_DONE / self.seconds
        return (
            f"| {self.fmt} | {self.size / 2**20:,.0f} MB | {self.seconds:.1f} s "
            f"| {rate:,.0f} rows/s | {baseline.seconds / self.seconds:.2f}x "
            f"| {self.before_mb:.0f} | {self.peak_mb:.0f} | {self.after_mb:.0f} "
            f"| +{self.peak_mb - self.before_mb:.0f} MB |"
        )


RECORDS_DONE = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000, help="records (1,000,000)")
    parser.add_argument("--record-bytes", type=int, default=1000, help="NDJSON bytes a record")
    parser.add_argument("--no-verify", action="store_true", help="skip the read-back check")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="admin URL of the PostgreSQL")
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    return parser.parse_args(argv)


async def export_to(base: Any, token: str, fmt: str, path: Path, pids: list[int]) -> Run:
    async with api_client(base, token, timeout=None) as client:
        before = max(base.rss_mb())
        size = 0
        with RssSampler(pids) as sampled, path.open("wb") as out:
            started = time.perf_counter()
            params = {"format": fmt, **({"envelope": "true"} if fmt == "ndjson" else {})}
            async with client.stream("GET", "/v1/datasets/big/export", params=params) as stream:
                if stream.status_code != 200:
                    raise RuntimeError(f"{fmt} export: {stream.status_code}")
                async for chunk in stream.aiter_raw():
                    size += len(chunk)
                    out.write(chunk)
            seconds = time.perf_counter() - started
        await asyncio.sleep(2.0)
        return Run(fmt, size, seconds, before, sampled.peak_mb, max(base.rss_mb()))


def ndjson_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as lines:
        for line in lines:
            yield json.loads(line)


def columnar_batches(path: Path, fmt: str) -> Iterator[pa.RecordBatch]:
    if fmt == "parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=10_000)
    else:
        with pa.memory_map(str(path)) as source:
            yield from pa.ipc.open_stream(source)


def verify(ndjson: Path, other: Path, fmt: str) -> int:
    """Rows compared; raises at the first that differs from its NDJSON line."""
    lines = ndjson_rows(ndjson)
    compared = 0
    for batch in columnar_batches(other, fmt):
        for row in batch.to_pylist():
            line = next(lines)
            expected = {"_id": line["id"], "_version": line["version"]}
            expected.update({k: line["data"].get(k) for k in RECORD_SCHEMA["properties"]})
            if row != expected:
                raise AssertionError(f"{fmt} row {compared} differs:\n{row}\n{expected}")
            compared += 1
    if next(lines, None) is not None:
        raise AssertionError(f"{fmt} has fewer rows than the NDJSON export")
    return compared


async def measure(args: argparse.Namespace, url: str, token: str, work: Path) -> list[Run]:
    global RECORDS_DONE
    server = start_entrepot(url, token, 1, work)
    try:
        async with api_client(server, token) as client:
            await create_org(client, "mem")
            dataset_id = await create_dataset(client, "mem", "big", url)
        pad = max(0, args.record_bytes - 110)
        loaded = await load_rows(url, dataset_id, args.records, "m-", pad_bytes=pad)
        RECORDS_DONE = args.records
        print(f"loaded {args.records:,} records in {loaded:.0f} s", flush=True)
        await asyncio.sleep(1.0)
        runs = []
        for fmt in FORMATS:
            run = await export_to(server, token, fmt, work / f"big.{fmt}", server.worker_pids())
            print(
                f"{fmt}: {run.size / 2**20:,.0f} MB in {run.seconds:.1f} s; RSS before "
                f"{run.before_mb:.0f} MB, peak {run.peak_mb:.0f}, after {run.after_mb:.0f}",
                flush=True,
            )
            runs.append(run)
        return runs
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    token = "ent_bench_" + secrets.token_urlsafe(24)
    db_name, url = asyncio.run(create_database(args.pg_url, "benchexport"))
    work = Path(tempfile.mkdtemp(prefix=f"entrepot-{db_name}-"))
    print(f"database {db_name}; files and server log in {work}", flush=True)
    try:
        asyncio.run(prepare_store(url, token))
        runs = asyncio.run(measure(args, url, token, work))
        checked = ""
        if not args.no_verify:
            for fmt in ("parquet", "arrow"):
                started = time.perf_counter()
                rows = verify(work / "big.ndjson", work / f"big.{fmt}", fmt)
                took = time.perf_counter() - started
                print(f"{fmt}: {rows:,} rows equal to the NDJSON export ({took:.0f} s)")
            checked = " Both read back (pyarrow, a batch at a time) equal to the NDJSON export."
        groups = pq.ParquetFile(work / "big.parquet").metadata.num_row_groups
        baseline = runs[0]
        today = datetime.date.today().isoformat()
        report = "\n".join(
            [
                "",
                f"## Export formats: NDJSON, Parquet, Arrow ({today})",
                "",
                f"Machine: {machine()}. Command: `.venv/bin/python bench/export_formats.py "
                f"--records {args.records} --record-bytes {args.record_bytes}` (one worker; "
                "the worker's RSS sampled every 0.2 s; each export streamed to a file).",
                "",
                "| format | size | time | rows/s | speed vs NDJSON | RSS before | peak | "
                "after (MB) | peak growth |",
                "|---|---|---|---|---|---|---|---|---|",
                *(run.line(baseline) for run in runs),
                "",
                f"The Parquet file has {groups} row groups.{checked}",
                "",
            ]
        )
        publish(report, args.append)
        return 0
    finally:
        asyncio.run(drop_database(args.pg_url, db_name))
        print(f"dropped database {db_name}")
        for path in work.glob("big.*"):
            path.unlink()
        for path in work.glob("*.log"):
            path.unlink()
        with contextlib.suppress(OSError):
            work.rmdir()


if __name__ == "__main__":
    raise SystemExit(main())
