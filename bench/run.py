"""Entrepot's benchmark suite: our server against a bare ASGI + asyncpg baseline.

One run, one machine, one PostgreSQL: a fresh database is created and
migrated, a dataset is created through the API and loaded with N records
straight through SQL (setup, not measured), then wrk (-t1) loads 127.0.0.1:

  get          GET one record by id with auth     vs bare ASGI + asyncpg
  list         filter[price][lt]=1&limit=50, and filter[region]=eu&sort=price&limit=50,
               at -c N and at -c 1 (unloaded latency)  vs the same SQL, bare
  create       POST one record into 1 dataset,    vs raw asyncpg BEGIN; INSERT; COMMIT
               then round robin into 4              from 32 tasks, into as many
                                                    datasets (bench/raw_writes.py);
               and a control: the bare app's POST (one INSERT) at the same worker
               count, to show what a second worker buys on this machine at all
  import       POST /import NDJSON (streamed)     vs asyncpg copy_records_to_table
  rss          RSS of each worker at idle and after the load

and prints a table (plain and Markdown). Servers are stopped and the
database dropped at the end, whatever happens.

    .venv/bin/python bench/run.py --rows 1000000 --workers 1,2 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import httpx
import orjson

from _common import (
    DEFAULT_PG_URL,
    ROOT,
    RssSampler,
    Server,
    WrkResult,
    aiter_chunks,
    api_client,
    create_database,
    create_dataset,
    create_org,
    drop_database,
    load_rows,
    ndjson_chunks,
    parse_bench_json,
    prepare_store,
    record,
    route_exists,
    run_wrk,
    start_baseline,
    start_entrepot,
    wait_quiet,
    wrk_available,
)
from entrepot.settings import Settings

QUIET = 15.0
SCENARIOS = ("get", "list", "create", "import", "rss")
ORG = "bench"
DATASET = "catalog"
WRITES = "writes"  # the bare app's create route writes here (equivalence checks)
SPREADS = (1, 4)  # datasets the creates go to
# Single-record creates measured when this work began (issue 8, wrk -t1 -c32): the
# 1-dataset target is three times these.
CREATES_BEFORE = {1: 790.0, 2: 590.0}
REGION = "eu"
OURS_RECORDS = f"/v1/datasets/{DATASET}/records"
OURS_LIST_REGION = f"{OURS_RECORDS}?filter%5Bregion%5D={REGION}&sort=price&limit=50"


def price_limit(rows: int) -> str:
    """A price bound that about 1,000 of the loaded records fall under (prices span 0-1000)."""
    return str(max(1, min(1000, -(-1_000_000 // rows))))


def ours_list_price(rows: int) -> str:
    return f"{OURS_RECORDS}?filter%5Bprice%5D%5Blt%5D={price_limit(rows)}&limit=50"


def base_list_price(rows: int) -> str:
    return f"/list/price-lt?value={price_limit(rows)}&limit=50"


BASE_LIST_REGION = f"/list/region-by-price?region={REGION}&limit=50"


@dataclass
class Row:
    scenario: str
    workers: int
    unit: str
    ours: float | None = None
    base: float | None = None
    ours_p50: float | None = None
    ours_p99: float | None = None
    base_p50: float | None = None
    base_p99: float | None = None
    target: str = ""
    verdict: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.base:
            return None
        return self.ours / self.base


@dataclass
class Context:
    args: argparse.Namespace
    admin_url: str
    url: str
    token: str
    log_dir: Path
    dataset_id: int = 0
    write_dataset_id: int = 0
    ours_writes: list[str] = field(default_factory=list)  # datasets ours creates into
    raw_writes: list[int] = field(default_factory=list)  # dataset ids the raw baseline uses
    import_ok: bool | None = None
    rows: list[Row] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


# --- argument parsing -----------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="records loaded (1000000)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds a scenario (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (32)")
    parser.add_argument(
        "--workers", default="1", help="comma-separated uvicorn worker counts, e.g. 1,2 (1)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per scenario; medians are reported (1)"
    )
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios among {', '.join(SCENARIOS)} (all)",
    )
    parser.add_argument(
        "--import-rows", type=int, default=200_000, help="records a bulk import sends (200000)"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="admin URL of the PostgreSQL")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the Entrepot server (repeatable), "
        "e.g. ENTREPOT_LOG_LEVEL=warning",
    )
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep server logs (printed path) after the run"
    )
    args = parser.parse_args(argv)
    args.workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    args.only = {s.strip() for s in str(args.only).split(",") if s.strip()}
    unknown = args.only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; use {SCENARIOS}")
    if args.rows < 1000:
        parser.error("--rows must be at least 1000")
    return args


# The bare app's pool, and so the connections both sides may use for a request: ours
# is given a budget of this many for its request pool plus the planned pool's default
# share (ENTREPOT_PLANNED_POOL_SIZE, opened only by lists), so that a GET or a create
# has as many connections as the bare app's (by default 6 of the 10 serve them: run M
# in bench/RESULTS.md measures both). --server-env overrides either.
BASE_POOL = 10
PLANNED_SHARE: int = Settings.model_fields["planned_pool_size"].default


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = {
        "ENTREPOT_POOL_MAX_SIZE": str(BASE_POOL + PLANNED_SHARE),
        "ENTREPOT_PLANNED_POOL_SIZE": str(PLANNED_SHARE),
    }
    for item in args.server_env:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--server-env takes KEY=VALUE, got {item!r}")
        env[key] = value
    return env


# --- setup ------------------------------------------------------------------


async def setup_datasets(ctx: Context) -> None:
    """Create the org and the main dataset through the API, then load the rows by SQL."""
    server = start_entrepot(ctx.url, ctx.token, 1, ctx.log_dir, server_env(ctx.args))
    try:
        async with api_client(server, ctx.token) as client:
            await create_org(client, ORG)
            ctx.dataset_id = await create_dataset(client, ORG, DATASET, ctx.url)
            ctx.write_dataset_id = await create_dataset(client, ORG, WRITES, ctx.url)
            for i in range(1, max(SPREADS) + 1):
                ctx.ours_writes.append(f"writes-{i}")
                await create_dataset(client, ORG, f"writes-{i}", ctx.url)
                ctx.raw_writes.append(await create_dataset(client, ORG, f"raw-{i}", ctx.url))
        ctx.import_ok = await route_exists(server, "post", "/v1/datasets/{ds}/import")
    finally:
        server.stop()
    print(f"loading {ctx.args.rows:,} records into records_{ctx.dataset_id} ...", flush=True)
    seconds = await load_rows(ctx.url, ctx.dataset_id, ctx.args.rows)
    print(f"  loaded in {seconds:.1f}s (setup, not measured)", flush=True)
    ctx.info["load_seconds"] = round(seconds, 1)


async def check_equivalence(ctx: Context, ours: Server, base: Server) -> None:
    """Both servers must answer the same records before we compare their speed."""
    async with (
        api_client(ours, ctx.token) as oc,
        httpx.AsyncClient(base_url=base.base_url) as bc,
    ):
        o = await oc.get(f"{OURS_RECORDS}/sku-7")
        b = await bc.get("/records/sku-7")
        if o.status_code != 200 or b.status_code != 200 or o.json() != b.json():
            raise RuntimeError(f"GET differs: ours {o.status_code} {o.text} / base {b.text}")
        for ours_path, base_path in (
            (ours_list_price(ctx.args.rows), base_list_price(ctx.args.rows)),
            (OURS_LIST_REGION, BASE_LIST_REGION),
        ):
            o = await oc.get(ours_path)
            b = await bc.get(base_path)
            if o.status_code != 200 or b.status_code != 200:
                raise RuntimeError(f"list failed: ours {o.status_code} {o.text[:300]}")
            ours_ids = [r["id"] for r in o.json()["data"]]
            base_ids = [r["id"] for r in b.json()["data"]]
            if ours_ids != base_ids or len(ours_ids) != 50:
                raise RuntimeError(f"list differs for {ours_path}: {ours_ids[:5]} {base_ids[:5]}")


async def explain(ctx: Context) -> dict[str, str]:
    """Plan and server-side execution time of the list queries (for the report)."""
    from baseline_app import PRICE_LT_SQL, REGION_BY_PRICE_SQL

    table_sql = {
        f"list price<{price_limit(ctx.args.rows)}": (PRICE_LT_SQL, price_limit(ctx.args.rows)),
        "list region=eu sort=price": (REGION_BY_PRICE_SQL, orjson.dumps(REGION).decode()),
    }
    out = {}
    conn = await asyncpg.connect(ctx.url)
    try:
        for name, (sql, value) in table_sql.items():
            sql = sql.replace("records_0", f"records_{ctx.dataset_id}").replace(
                "dataset_id = 0", f"dataset_id = {ctx.dataset_id}"
            )
            lines = [
                r[0]
                for r in await conn.fetch(
                    f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", value, 51
                )
            ]
            scans = [ln.strip() for ln in lines if "Scan" in ln]
            total = [ln for ln in lines if ln.startswith("Execution Time")]
            out[name] = f"{'; '.join(scans)}; {total[0] if total else ''}"
    finally:
        await conn.close()
    return out


# --- scenarios --------------------------------------------------------------


def median_result(results: list[WrkResult]) -> WrkResult:
    return WrkResult(
        requests=int(statistics.median(r.requests for r in results)),
        seconds=statistics.median(r.seconds for r in results),
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        mean_ms=statistics.median(r.mean_ms for r in results),
        errors=sum(r.errors for r in results),
        non_2xx=sum(r.non_2xx for r in results),
    )


def wrk_pair(
    ctx: Context,
    name: str,
    workers: int,
    ours: Callable[[float, str], WrkResult],
    base: Callable[[float, str], WrkResult],
    target: str = "",
    judge: Callable[[Row], str] | None = None,
) -> Row:
    """Warm both up, then alternate measured runs (ours, base) ``--repeat`` times."""
    args = ctx.args
    print(f"[w={workers}] {name} ...", flush=True)
    if args.warmup > 0:
        ours(args.warmup, f"warm-o{workers}-{secrets.token_hex(3)}")
        base(args.warmup, f"warm-b{workers}-{secrets.token_hex(3)}")
    ours_runs, base_runs = [], []
    busy: list[float] = []
    for i in range(args.repeat):
        busy.append(wait_quiet())
        ours_runs.append(ours(args.duration, f"o{workers}-{i}-{secrets.token_hex(3)}"))
        busy.append(wait_quiet())
        base_runs.append(base(args.duration, f"b{workers}-{i}-{secrets.token_hex(3)}"))
        print(
            f"    run {i + 1}: ours {ours_runs[-1].rps:,.0f} req/s "
            f"(p50 {ours_runs[-1].p50_ms:.2f} ms), base {base_runs[-1].rps:,.0f} req/s "
            f"(p50 {base_runs[-1].p50_ms:.2f} ms)",
            flush=True,
        )
    o, b = median_result(ours_runs), median_result(base_runs)
    row = Row(name, workers, "req/s", o.rps, b.rps, o.p50_ms, o.p99_ms, b.p50_ms, b.p99_ms)
    row.target = target
    for who, r in (("ours", o), ("base", b)):
        if r.errors or r.non_2xx:
            row.notes.append(f"{who}: {r.non_2xx} non-2xx, {r.errors} socket errors")
    if judge is not None:
        row.verdict = judge(row)
    if max(busy) > QUIET:
        row.notes.append(f"machine busy with other work before a run ({max(busy):.0f}% CPU)")
    if len(ours_runs) > 1:
        ours_list = "/".join(f"{r.rps:,.0f}" for r in ours_runs)
        base_list = "/".join(f"{r.rps:,.0f}" for r in base_runs)
        row.notes.append(f"runs: ours {ours_list}; base {base_list} req/s")
    ctx.rows.append(row)
    return row


def ratio_at_least(minimum: float) -> Callable[[Row], str]:
    def judge(row: Row) -> str:
        ratio = row.ratio
        if ratio is None:
            return "n/a"
        return "met" if ratio >= minimum else "MISSED"

    return judge


def scenario_get(ctx: Context, ours: Server, base: Server, workers: int) -> None:
    c = ctx.args.connections
    wrk_pair(
        ctx,
        "GET record by id (auth)",
        workers,
        lambda d, tag: run_wrk(
            ours.base_url,
            "get-random",
            path=f"{OURS_RECORDS}/sku-",
            token=ctx.token,
            count=ctx.args.rows,
            duration=d,
            connections=c,
        ),
        lambda d, tag: run_wrk(
            base.base_url,
            "get-random",
            path="/records/sku-",
            count=ctx.args.rows,
            duration=d,
            connections=c,
        ),
        target=">= 60% of bare" if workers == 1 else "",
        judge=ratio_at_least(0.6) if workers == 1 else None,
    )


def list_judge(row: Row) -> str:
    if row.ours_p50 is None:
        return "n/a"
    return "met" if row.ours_p50 < 10 else "MISSED"


def list_ratio_judge(row: Row) -> str:
    return ratio_at_least(0.6)(row) if row.workers == 1 else ""


def scenario_list(ctx: Context, ours: Server, base: Server, workers: int) -> None:
    rows = ctx.args.rows
    cases = (
        (
            f"list price<{price_limit(rows)}, limit 50 ({rows:,} rows)",
            ours_list_price(rows),
            base_list_price(rows),
        ),
        (
            f"list region=eu sort=price, limit 50 ({rows:,} rows)",
            OURS_LIST_REGION,
            BASE_LIST_REGION,
        ),
    )
    for connections in (ctx.args.connections, 1):
        for label, ours_path, base_path in cases:
            wrk_pair(
                ctx,
                f"{label}, c={connections}",
                workers,
                lambda d, tag, p=ours_path, c=connections: run_wrk(
                    ours.base_url, "static", path=p, token=ctx.token, duration=d, connections=c
                ),
                lambda d, tag, p=base_path, c=connections: run_wrk(
                    base.base_url, "static", path=p, duration=d, connections=c
                ),
                target="p50 in ms (< 10 ms)"
                if connections == 1
                else (">= 60% of bare" if workers == 1 else ""),
                judge=list_judge if connections == 1 else list_ratio_judge,
            )


def run_raw_writes(ctx: Context, dataset_ids: list[int], duration: float, tag: str) -> WrkResult:
    """bench/raw_writes.py in a process of its own, as wrk would report it."""
    argv = [
        sys.executable,
        str(Path(__file__).with_name("raw_writes.py")),
        "--url",
        ctx.url,
        "--datasets",
        ",".join(map(str, dataset_ids)),
        "--tasks",
        str(ctx.args.connections),
        "--duration",
        str(duration),
        "--tag",
        tag,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=duration + 60)
    return parse_bench_json(out.stdout, out.stderr)


def creates_judge(spread: int) -> Callable[[Row], str]:
    """4 datasets: at least half of raw with 2 workers; 1 dataset: 3x the rate before."""

    def judge(row: Row) -> str:
        if row.ours is None:
            return "n/a"
        if spread == 1:
            before = CREATES_BEFORE.get(row.workers)
            return "n/a" if before is None else ("met" if row.ours >= 3 * before else "MISSED")
        if row.workers != 2:
            return ""
        return "met" if (row.ratio or 0) >= 0.5 else "MISSED"

    return judge


CONTROL = "control: bare ASGI POST (one INSERT), 1 dataset"


def scenario_create(ctx: Context, ours: Server, base: Server, workers: int) -> None:
    for spread in SPREADS:
        paths = ",".join(f"/v1/datasets/{name}/records" for name in ctx.ours_writes[:spread])
        raw_ids = ctx.raw_writes[:spread]
        before = CREATES_BEFORE.get(workers)
        wrk_pair(
            ctx,
            f"POST create one record, {spread} dataset{'s' if spread > 1 else ''}",
            workers,
            lambda d, tag, p=paths: run_wrk(
                ours.base_url,
                "post-create",
                path=p,
                token=ctx.token,
                tag=tag,
                duration=d,
                connections=ctx.args.connections,
            ),
            lambda d, tag, ids=raw_ids: run_raw_writes(ctx, ids, d, tag),
            target=(
                f">= {3 * before:,.0f} req/s (3x before)"
                if spread == 1 and before
                else (">= 50% of raw" if workers == 2 else "")
            ),
            judge=creates_judge(spread),
        )
    # What a second worker buys on this machine without any of Entrepot: the bare app's
    # create (no auth, validation, audit or feed) at the same worker count. When it is no
    # faster at 2 workers than at 1 either, the cores are the limit, not the write path.
    wrk_pair(
        ctx,
        CONTROL,
        workers,
        lambda d, tag: run_wrk(
            base.base_url,
            "post-create",
            path="/records",
            tag=tag,
            duration=d,
            connections=ctx.args.connections,
        ),
        lambda d, tag, ids=ctx.raw_writes[:1]: run_raw_writes(ctx, ids, d, tag),
    )


async def import_ours(ctx: Context, server: Server, dataset: str, count: int) -> tuple[float, Any]:
    prefix = f"{dataset}-"
    async with api_client(server, ctx.token, timeout=None) as client:
        started = time.perf_counter()
        response = await client.post(
            f"/v1/datasets/{dataset}/import",
            content=aiter_chunks(ndjson_chunks(count, prefix)),
            headers={"Content-Type": "application/x-ndjson"},
        )
        elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"import: {response.status_code} {response.text[:500]}")
    return elapsed, response.json()


async def copy_baseline(ctx: Context, dataset_id: int, count: int, prefix: str) -> float:
    """Raw COPY of the same records (built and encoded the same way) into a partition."""
    dumps = orjson.dumps

    def rows() -> Any:
        for n in range(1, count + 1):
            rec = record(n, prefix)
            yield (dataset_id, rec["sku"], 1, dumps(rec).decode())

    conn = await asyncpg.connect(ctx.url)
    try:
        started = time.perf_counter()
        await conn.copy_records_to_table(
            f"records_{int(dataset_id)}",
            records=rows(),
            columns=["dataset_id", "id", "version", "data"],
        )
        return time.perf_counter() - started
    finally:
        await conn.close()


async def count_rows(url: str, dataset_id: int) -> int:
    conn = await asyncpg.connect(url)
    try:
        n: int = await conn.fetchval(f"SELECT count(*) FROM records_{int(dataset_id)}")
        return n
    finally:
        await conn.close()


async def scenario_import(ctx: Context, ours: Server, workers: int) -> None:
    count = ctx.args.import_rows
    name = f"bulk import NDJSON ({count:,} rows)"
    if not ctx.import_ok:
        print(f"[w={workers}] {name}: SKIPPED, no POST /v1/datasets/{{ds}}/import", flush=True)
        ctx.rows.append(
            Row(
                name,
                workers,
                "rows/s",
                target=">= 50% of COPY",
                verdict="skipped",
                notes=["POST /v1/datasets/{ds}/import not in the server's OpenAPI yet"],
            )
        )
        return
    print(f"[w={workers}] {name} ...", flush=True)
    ours_rates, base_rates, peaks = [], [], []
    for i in range(ctx.args.repeat):
        tag = secrets.token_hex(3)
        async with api_client(ours, ctx.token) as client:
            await create_dataset(client, ORG, f"imp-o-{tag}", ctx.url)
            base_id = await create_dataset(client, ORG, f"imp-b-{tag}", ctx.url)
        wait_quiet()
        with RssSampler(ours.worker_pids()) as sampler:
            seconds, report = await import_ours(ctx, ours, f"imp-o-{tag}", count)
        if report.get("inserted") != count:
            raise RuntimeError(f"import inserted {report}")
        wait_quiet()
        copy_seconds = await copy_baseline(ctx, base_id, count, f"imp-b-{tag}-")
        if await count_rows(ctx.url, base_id) != count:
            raise RuntimeError("COPY baseline did not write every row")
        ours_rates.append(count / seconds)
        base_rates.append(count / copy_seconds)
        peaks.append(sampler.peak_mb)
        print(
            f"    run {i + 1}: ours {count / seconds:,.0f} rows/s ({seconds:.1f}s, worker peak "
            f"RSS {sampler.peak_mb:.0f} MB), COPY {count / copy_seconds:,.0f} rows/s "
            f"({copy_seconds:.1f}s)",
            flush=True,
        )
    row = Row(
        name,
        workers,
        "rows/s",
        statistics.median(ours_rates),
        statistics.median(base_rates),
        target=">= 50% of COPY",
    )
    row.verdict = ratio_at_least(0.5)(row)
    ours_rate, base_rate = statistics.median(ours_rates), statistics.median(base_rates)
    row.notes.append(
        f"ours {count / ours_rate:.1f}s, COPY {count / base_rate:.1f}s (medians); "
        f"worker peak RSS during import {max(peaks):.0f} MB"
    )
    ctx.rows.append(row)


def rss_row(ctx: Context, label: str, ours: Server, base: Server, workers: int) -> None:
    o, b = ours.rss_mb(), base.rss_mb()
    row = Row(
        label,
        workers,
        "MB",
        max(o) if o else None,
        max(b) if b else None,
        target="< 130 MB" if "idle" in label else "",
    )
    if "idle" in label and row.ours is not None:
        row.verdict = "met" if row.ours < 130 else "MISSED"
    row.notes.append("per worker: ours " + ", ".join(f"{x:.0f}" for x in o))
    row.notes.append("base " + ", ".join(f"{x:.0f}" for x in b))
    ctx.rows.append(row)


async def measure(ctx: Context, workers: int) -> None:
    only = ctx.args.only
    ours = start_entrepot(ctx.url, ctx.token, workers, ctx.log_dir, server_env(ctx.args))
    base: Server | None = None
    try:
        base = start_baseline(
            ctx.url,
            ctx.dataset_id,
            workers,
            ctx.log_dir,
            write_dataset_id=ctx.write_dataset_id,
            extra_env={"BASELINE_POOL_SIZE": str(BASE_POOL)},
        )
        await check_equivalence(ctx, ours, base)
        await asyncio.sleep(1.0)
        if "rss" in only:
            rss_row(ctx, "idle RSS of a worker after start-up", ours, base, workers)
        if "get" in only:
            scenario_get(ctx, ours, base, workers)
        if "list" in only:
            scenario_list(ctx, ours, base, workers)
        if "create" in only:
            scenario_create(ctx, ours, base, workers)
        if "import" in only:
            await scenario_import(ctx, ours, workers)
        if "rss" in only:
            await asyncio.sleep(2.0)
            rss_row(ctx, "RSS of a worker after the load", ours, base, workers)
    finally:
        ours.stop()
        if base is not None:
            base.stop()


# --- report -----------------------------------------------------------------


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "MB":
        return f"{value:.0f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def table(rows: list[Row]) -> list[list[str]]:
    out = [
        [
            "scenario",
            "workers",
            "unit",
            "ours",
            "baseline",
            "ours/base",
            "ours p50 ms",
            "ours p99 ms",
            "base p50 ms",
            "base p99 ms",
            "target",
            "verdict",
        ]
    ]
    for r in rows:
        out.append(
            [
                r.scenario,
                str(r.workers),
                r.unit,
                fmt(r.ours, r.unit),
                fmt(r.base, r.unit),
                f"{r.ratio:.0%}" if r.ratio is not None else "-",
                fmt(r.ours_p50),
                fmt(r.ours_p99),
                fmt(r.base_p50),
                fmt(r.base_p99),
                r.target,
                r.verdict,
            ]
        )
    return out


def plain(rows: list[Row]) -> str:
    cells = table(rows)
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(ctx: Context) -> str:
    cells = table(ctx.rows)
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    notes = [f"- {r.scenario} (w={r.workers}): {'; '.join(r.notes)}" for r in ctx.rows if r.notes]
    info = [f"- {k}: {v}" for k, v in ctx.info.items()]
    return "\n".join(["\n".join(lines), "", *info, "", *notes, ""])


def machine_info(ctx: Context) -> None:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    ctx.info.update(
        {
            "date (UTC)": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "command": " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]]),
            "machine": f"{os.cpu_count()} CPUs ({cpu}), {mem_gb:.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "git": git,
            "load generator": f"wrk -t1 -c{ctx.args.connections}, {ctx.args.duration:g}s "
            f"a run after {ctx.args.warmup:g}s warm-up, {ctx.args.repeat} run(s), medians",
        }
    )


async def pg_version(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        version: str = await conn.fetchval("SHOW server_version")
        return version
    finally:
        await conn.close()


# --- main -------------------------------------------------------------------


async def main_async(ctx: Context) -> None:
    await prepare_store(ctx.url, ctx.token)
    ctx.info["postgresql"] = await pg_version(ctx.url)
    await setup_datasets(ctx)
    if "list" in ctx.args.only:
        for name, plan in (await explain(ctx)).items():
            ctx.info[f"plan {name}"] = plan
    for workers in ctx.args.workers:
        await measure(ctx, workers)
    judge_scaling(ctx)


def judge_scaling(ctx: Context) -> None:
    """Creates: 2 workers must be faster than 1 (on each spread); beside each verdict,
    what 2 workers did for the bare control in the same run."""
    by_key = {
        (r.scenario, r.workers): r
        for r in ctx.rows
        if r.scenario.startswith("POST create") or r.scenario == CONTROL
    }
    bare = [row.ours for w in (1, 2) if (row := by_key.get((CONTROL, w))) is not None]
    control_note = ""
    if len(bare) == 2 and bare[0] and bare[1]:
        control_note = (
            f"; the bare control at 2 workers: {bare[1]:,.0f} vs {bare[0]:,.0f} req/s "
            f"({100 * (bare[1] / bare[0] - 1):+.0f}%)"
        )
    for (scenario, workers), row in by_key.items():
        if scenario == CONTROL:
            continue
        one = by_key.get((scenario, 1))
        if workers != 2 or one is None or one.ours is None or row.ours is None:
            continue
        faster = row.ours > one.ours
        row.notes.append(
            f"2 workers {'faster' if faster else 'NOT faster'} than 1: "
            f"{row.ours:,.0f} vs {one.ours:,.0f} req/s{control_note}"
        )
        if not faster:
            row.verdict = "MISSED"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk_available():
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    token = "ent_bench_" + secrets.token_urlsafe(24)
    db_name, url = asyncio.run(create_database(args.pg_url))
    log_dir = Path(tempfile.mkdtemp(prefix=f"entrepot-{db_name}-"))
    ctx = Context(args, args.pg_url, url, token, log_dir)
    machine_info(ctx)
    ctx.info["rows loaded"] = f"{args.rows:,}"
    env = server_env(args)
    ctx.info["connections"] = (
        f"base pool {BASE_POOL}; ours ENTREPOT_POOL_MAX_SIZE {env['ENTREPOT_POOL_MAX_SIZE']}, "
        f"of which ENTREPOT_PLANNED_POOL_SIZE {env['ENTREPOT_PLANNED_POOL_SIZE']} for lists"
    )
    print(f"database {db_name}; server logs in {log_dir}", flush=True)
    failed = False
    try:
        asyncio.run(main_async(ctx))
    except Exception as exc:
        failed = True
        print(f"benchmark failed: {exc!r}", file=sys.stderr)
    except KeyboardInterrupt:
        failed = True
        print("interrupted", file=sys.stderr)
    finally:
        asyncio.run(drop_database(args.pg_url, db_name))
        print(f"dropped database {db_name}", flush=True)
        if not args.keep_logs and not failed:
            for path in log_dir.glob("*.log"):
                path.unlink()
            with contextlib.suppress(OSError):
                log_dir.rmdir()
    if ctx.rows:
        print()
        print(plain(ctx.rows))
        print()
        report = markdown(ctx)
        print(report)
        if args.markdown:
            args.markdown.write_text(report)
        if args.json:
            args.json.write_text(
                orjson.dumps(
                    {"info": ctx.info, "rows": [asdict(r) | {"ratio": r.ratio} for r in ctx.rows]},
                    option=orjson.OPT_INDENT_2,
                ).decode()
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
