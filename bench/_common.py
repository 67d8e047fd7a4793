"""Shared plumbing for the benchmarks: databases, servers, wrk, memory sampling.

Everything here talks to 127.0.0.1 only, and everything it starts it also
stops: servers get SIGTERM (then SIGKILL after a grace period) and the
benchmark databases are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import orjson
import psutil

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"
VENV_BIN = Path(sys.executable).parent
WRK_SCRIPT = BENCH_DIR / "wrk" / "bench.lua"
DEFAULT_PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
HOST = "127.0.0.1"

# --- the records every benchmark uses -------------------------------------

REGIONS = ("eu", "us", "apac", "latam")

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "name": {"type": "string"},
        "price": {"type": "number"},
        "region": {"type": "string", "enum": list(REGIONS)},
        "stock": {"type": "integer"},
        "description": {"type": "string"},
    },
    "required": ["sku", "name", "price", "region"],
    "additionalProperties": False,
}
INDEXES = ["price", "region"]


def record(n: int, prefix: str = "sku-", pad: str = "") -> dict[str, Any]:
    """Record number ``n``: the same shape the SQL loader writes (see ``load_rows``)."""
    rec: dict[str, Any] = {
        "sku": f"{prefix}{n}",
        "name": f"Item {n}",
        "price": ((n * 7919) % 100_000) / 100,
        "region": REGIONS[n % 4],
        "stock": n % 500,
    }
    if pad:
        rec["description"] = pad
    return rec


def ndjson_chunks(
    count: int, prefix: str, *, pad: str = "", per_chunk: int = 1000
) -> Iterator[bytes]:
    """``count`` records as NDJSON, ``per_chunk`` lines at a time (never the whole body)."""
    dumps = orjson.dumps
    for start in range(0, count, per_chunk):
        stop = min(start + per_chunk, count)
        yield b"".join(dumps(record(n, prefix, pad)) + b"\n" for n in range(start + 1, stop + 1))


async def aiter_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


# --- databases ------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def create_database(admin_url: str, prefix: str = "bench") -> tuple[str, str]:
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def prepare_store(url: str, token: str) -> None:
    from entrepot.auth.bootstrap import bootstrap
    from entrepot.store.migrate import migrate

    await migrate(url)
    await bootstrap(url, token)


async def load_rows(
    url: str, dataset_id: int, count: int, prefix: str = "sku-", pad_bytes: int = 0
) -> float:
    """Insert ``count`` records straight into the dataset's partition; return seconds taken.

    ``pad_bytes``: each record also gets a ``description`` of about that many bytes
    (two hex digests of its number, repeated: different in every record, though a
    compressor shrinks the repeats).

    The field indexes are dropped during the load and rebuilt after it (one
    sorted build is far faster than a million index insertions), then ANALYZE.
    """
    from entrepot.catalog.repository import create_field_index, drop_field_index

    started = time.perf_counter()
    table = f"records_{int(dataset_id)}"
    regions = "ARRAY[" + ",".join(f"'{r}'" for r in REGIONS) + "]"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for name in INDEXES:
            await drop_field_index(conn, dataset_id, name)
        await conn.execute(
            f"""
            INSERT INTO {table} (dataset_id, id, version, data)
            SELECT {int(dataset_id)}, $1 || g, 1, jsonb_build_object(
                'sku', $1 || g,
                'name', 'Item ' || g,
                'price', (((g::bigint * 7919) % 100000) / 100.0)::float8,
                'region', ({regions})[1 + g % 4],
                'stock', g % 500)
                || CASE WHEN $3::int > 0 THEN jsonb_build_object('description',
                    repeat(md5(g::text) || md5((g + 1)::text), $3::int / 64 + 1))
                    ELSE '{{}}'::jsonb END
            FROM generate_series(1, $2::int) AS g
            """,
            prefix,
            count,
            pad_bytes,
        )
        for name in INDEXES:
            await create_field_index(conn, dataset_id, name, integer_ids=False)
        await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()
    return time.perf_counter() - started


# --- servers --------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of ``values`` (NaN when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """A server process we started (in its own session), with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    workers: int
    log_path: Path
    _log: Any = field(repr=False, default=None)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the server itself, or its spawned workers."""
        if self.workers <= 1:
            return [self.proc.pid]
        pids = []
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.proc.pid).children(recursive=False):
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    if any("spawn_main" in part for part in child.cmdline()):
                        pids.append(child.pid)
        return sorted(pids)

    def rss_mb(self) -> list[float]:
        out = []
        for pid in self.worker_pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                out.append(psutil.Process(pid).memory_info().rss / 2**20)
        return out

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"  {self.name}: no exit {timeout:.0f}s after SIGTERM, killing", flush=True)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        # Workers of a multi-process server live in the same session (process group).
        deadline = time.monotonic() + 10
        with contextlib.suppress(ProcessLookupError, PermissionError):
            while True:
                os.killpg(self.proc.pid, 0)  # raises once no process of the group is left
                if time.monotonic() > deadline:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                time.sleep(0.1)
        if self._log is not None:
            self._log.close()
            self._log = None


def _spawn(
    name: str, argv: list[str], env: dict[str, str], port: int, workers: int, log_dir: Path
) -> Server:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    return Server(name, proc, port, workers, log_path, log)


def start_entrepot(
    url: str,
    token: str,
    workers: int,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
) -> Server:
    port = free_port()
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": token,
        **(extra_env or {}),
    }
    argv = [str(VENV_BIN / "entrepot"), "serve", "--port", str(port), "--workers", str(workers)]
    server = _spawn(f"entrepot-w{workers}-{port}", argv, env, port, workers, log_dir)
    wait_ready(server, "/readyz")
    return server


def start_baseline(
    url: str,
    dataset_id: int,
    workers: int,
    log_dir: Path,
    write_dataset_id: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> Server:
    """The bare ASGI app under the same uvicorn settings as ``entrepot serve``."""
    port = free_port()
    env = {
        "BASELINE_DATABASE_URL": url,
        "BASELINE_DATASET_ID": str(dataset_id),
        "BASELINE_WRITE_DATASET_ID": str(write_dataset_id or dataset_id),
        **(extra_env or {}),
    }
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "baseline_app:app",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--proxy-headers",
        "--timeout-graceful-shutdown",
        "30",
    ]
    server = _spawn(f"baseline-w{workers}-{port}", argv, env, port, workers, log_dir)
    wait_ready(server, "/healthz")
    return server


def wait_ready(server: Server, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            server.stop()
            raise RuntimeError(f"{server.name} exited; see {server.log_path}")
        try:
            response = httpx.get(server.base_url + path, timeout=2.0)
            if response.status_code == 200 and (
                server.workers <= 1 or len(server.worker_pids()) >= server.workers
            ):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f}s; see {server.log_path}")


# --- the load generator ---------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    errors: int
    non_2xx: int


def wrk_available() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    url: str,
    mode: str,
    *,
    path: str,
    token: str = "",
    count: int = 0,
    tag: str = "",
    duration: float = 10.0,
    connections: int = 32,
    threads: int = 1,
) -> WrkResult:
    """Run wrk with bench/wrk/bench.lua; ``mode`` is get-random, static or post-create."""
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        mode,
        path,
        token,
        str(count),
        tag or "t",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=duration + 60)
    return parse_bench_json(out.stdout, out.stderr)


def parse_bench_json(stdout: str, stderr: str = "") -> WrkResult:
    """The ``BENCHJSON {...}`` line of wrk (bench/wrk/bench.lua) or bench/raw_writes.py."""
    for line in stdout.splitlines():
        if line.startswith("BENCHJSON "):
            data = orjson.loads(line.removeprefix("BENCHJSON "))
            seconds = data["duration_us"] / 1e6
            return WrkResult(
                requests=data["requests"],
                seconds=seconds,
                rps=data["requests"] / seconds if seconds else 0.0,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                mean_ms=data["mean_us"] / 1000,
                errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
                non_2xx=data["status"],
            )
    raise RuntimeError(f"no result:\n{stdout}\n{stderr}")


def wait_quiet(threshold: float = 15.0, max_wait: float = 180.0) -> float:
    """Wait until the machine is idle (other work shares these cores); return the busy %.

    The benchmark's own servers are idle between runs, so CPU use above
    ``threshold`` percent means someone else is working. Returns the last
    reading, so a report can say when it could not get a quiet machine.
    """
    deadline = time.monotonic() + max_wait
    busy = psutil.cpu_percent(interval=1.0)
    while busy > threshold and time.monotonic() < deadline:
        busy = psutil.cpu_percent(interval=1.0)
    return busy


# --- memory ---------------------------------------------------------------


class RssSampler:
    """Samples the RSS of some processes every ``interval`` seconds in a thread."""

    def __init__(self, pids: list[int], interval: float = 0.2) -> None:
        self.procs = [psutil.Process(pid) for pid in pids]
        self.interval = interval
        self.peak_mb = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in self.procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- API helpers ----------------------------------------------------------


def api_client(server: Server, token: str, timeout: float | None = 30.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )


async def create_org(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post("/v1/orgs", json={"name": name, "title": name.title()})
    if response.status_code not in (201, 409):
        raise RuntimeError(f"create org: {response.status_code} {response.text}")


async def create_dataset(client: httpx.AsyncClient, org: str, name: str, url: str) -> int:
    """Create a dataset through the API; return its id (read from the store)."""
    response = await client.post(
        "/v1/datasets",
        json={
            "name": name,
            "org": org,
            "title": f"Benchmark {name}",
            "schema": RECORD_SCHEMA,
            "primary_key": "sku",
            "indexes": INDEXES,
        },
    )
    if response.status_code != 201:
        raise RuntimeError(f"create dataset: {response.status_code} {response.text}")
    conn = await asyncpg.connect(url)
    try:
        dataset_id: int = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", name)
    finally:
        await conn.close()
    return dataset_id


async def route_exists(server: Server, method: str, path: str) -> bool:
    """Whether the server's OpenAPI document declares ``method path``."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        response = await client.get("/openapi.json")
    if response.status_code != 200:
        return False
    paths = response.json().get("paths", {})
    return method.lower() in paths.get(path, {})


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- reports ----------------------------------------------------------------


def machine() -> str:
    """One line saying what the figures were measured on."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem_gb:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def git_version() -> str:
    return subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()


def publish(text: str, append: bool) -> None:
    """Print a report and, when asked, append it to bench/RESULTS.md."""
    print(text)
    if append:
        with RESULTS.open("a") as out:
            out.write(text)
        print(f"appended to {RESULTS}")
