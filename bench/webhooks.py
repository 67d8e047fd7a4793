"""Webhook delivery at scale: `entrepot serve` POSTing to receivers in processes of their own.

A fresh database and one `entrepot serve` (loopback allowed as a webhook
destination through ENTREPOT_WEBHOOK_ALLOWED_NETWORKS; a retry schedule of
seconds, ``--schedule``, so an outage is caught up within the run). The
receivers are separate processes (bench/hook_receiver.py: uvicorn, uvloop,
httptools, keep-alive), so they are not the bottleneck; they verify every
delivery with the `standardwebhooks` library and note its arrival time on the
machine's monotonic clock, which the writers here share. Scenarios, each on a
dataset of its own, each printing the write rate measured in the same run:

  single       one endpoint, record writes offered at ``--rate`` events/s in
               NDJSON import batches (open loop: a batch every 1/``--batches-per-s`` s)
  puts         one endpoint, ``--writers`` writers PUTting records as fast as
               acknowledged (what the issue measured: 135 deliveries/s for 275 writes/s)
  fanout       ``--endpoints`` endpoints (webhooks of ``--apps`` apps) on one dataset
               written at ``--fanout-rate`` events/s: each endpoint gets them all
  outage       ``--outage-endpoints`` endpoints on one dataset at ``--outage-rate``
               events/s; endpoint 0's receiver stops (connections refused) from
               ``--down-at`` s for ``--down-for`` s, then starts again

Writes upsert records from a pool, so records get several versions and the
per-record order is checked: at each endpoint, a record's versions must arrive
in increasing order. Latency is receiver arrival minus the writer's 2xx (just
after the commit, so it slightly under-states commit-to-delivery; negative
values, the delivery winning the race, count as 0). Every event must arrive at
every endpoint exactly once: missing events and repeated webhook-ids are
reported per scenario. Everything talks to 127.0.0.1; servers and receivers are
stopped and the database dropped at the end, whatever happens.

    .venv/bin/python bench/webhooks.py --pg embedded --append
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import orjson

from _common import (
    BENCH_DIR,
    DEFAULT_PG_URL,
    HOST,
    RESULTS,
    Server,
    api_client,
    create_database,
    create_dataset,
    create_org,
    drop_database,
    free_port,
    git_version,
    machine,
    percentile,
    prepare_store,
    publish,
    record,
    start_entrepot,
)

ORG = "hookbench"
APP_SCOPES = ["datasets:read", "records:read", "changes:read", "webhooks:manage"]
SCHEDULE = "0,1,2,4,8,8,8,8,8,8"

Key = tuple[str, int]  # (record id, version)


# --- the receivers --------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    endpoint: int
    webhook_id: str
    key: Key
    seq: int
    at: float


@dataclass
class ReceiverProcess:
    """bench/hook_receiver.py on one port, for some endpoints; restartable (its arrivals
    go to one file per life)."""

    secrets: dict[int, str]
    work_dir: Path
    port: int = field(default_factory=free_port)
    lives: int = 0
    proc: subprocess.Popen[bytes] | None = None
    outs: list[Path] = field(default_factory=list)

    def url(self, endpoint: int) -> str:
        return f"http://{HOST}:{self.port}/hook/{endpoint}"

    def start(self) -> None:
        self.lives += 1
        secrets_file = self.work_dir / f"secrets-{self.port}.json"
        secrets_file.write_bytes(orjson.dumps({str(k): v for k, v in self.secrets.items()}))
        out = self.work_dir / f"arrivals-{self.port}-{self.lives}.ndjson"
        self.outs.append(out)
        log = (self.work_dir / f"receiver-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(BENCH_DIR / "hook_receiver.py"),
                "--port",
                str(self.port),
                "--secrets",
                str(secrets_file),
                "--out",
                str(out),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{HOST}:{self.port}/count", timeout=1).status_code == 200:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the receiver on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: uvicorn stops listening (connections refused from here on), answers what
        it holds, and the receiver writes its arrivals."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    async def count(self, client: httpx.AsyncClient) -> tuple[int, int]:
        if self.proc is None or self.proc.poll() is not None:
            return 0, 0
        try:
            body = (await client.get(f"http://{HOST}:{self.port}/count")).json()
        except httpx.HTTPError:
            return 0, 0
        return int(body["accepted"]), int(body["rejected"])

    def arrivals(self) -> list[Arrival]:
        out = []
        for path in self.outs:
            if path.exists():
                for line in path.read_bytes().splitlines():
                    e, wid, rid, version, seq, at = orjson.loads(line)
                    out.append(Arrival(e, wid, (rid, version), seq, at))
        return out


# --- the platform ---------------------------------------------------------


async def make_app(admin: httpx.AsyncClient, name: str) -> tuple[str, str]:
    app = await admin.post("/v1/apps", json={"org": ORG, "name": name, "scopes": APP_SCOPES})
    if app.status_code != 201:
        raise RuntimeError(f"create app: {app.status_code} {app.text}")
    app_id = app.json()["id"]
    key = await admin.post(f"/v1/apps/{app_id}/keys", json={"name": name})
    if key.status_code != 201:
        raise RuntimeError(f"create key: {key.status_code} {key.text}")
    return app_id, key.json()["key"]


async def subscribe(
    server: Server, app_id: str, key: str, url: str, dataset: str
) -> tuple[str, str]:
    async with api_client(server, key) as as_app:
        created = await as_app.post(
            f"/v1/apps/{app_id}/webhooks", json={"url": url, "datasets": [dataset]}
        )
    if created.status_code != 201:
        raise RuntimeError(f"create webhook: {created.status_code} {created.text}")
    body = created.json()
    return body["id"], body["secret"]


# --- the writers ----------------------------------------------------------


@dataclass
class Writes:
    """What the writers got acknowledged: each (record id, version) and when."""

    acked: dict[Key, float] = field(default_factory=dict)
    versions: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    ended: float = 0.0

    def note(self, ids: list[str], at: float) -> None:
        for rid in ids:
            self.versions[rid] += 1
            self.acked[(rid, self.versions[rid])] = at

    @property
    def per_second(self) -> float:
        return len(self.acked) / (self.ended - self.started) if self.ended > self.started else 0


async def paced_imports(
    server: Server, token: str, dataset: str, rate: float, seconds: float, batches_per_s: float
) -> Writes:
    """``rate`` events/s as NDJSON upsert imports, a batch every 1/batches_per_s s, at most
    two in flight (imports draw on a small pool of bulk connections; a batch that finds
    none answered 503 goes again shortly). A batch falling behind its time is sent late:
    the write rate measured says what was achieved. Records come from a pool of 4 s of
    writes, so no two batches in flight write the same record."""
    writes = Writes()
    slots = asyncio.Semaphore(2)
    per_batch = max(1, round(rate / batches_per_s))
    batches = round(seconds * batches_per_s)
    pool = max(per_batch * 2, round(rate * 4) // per_batch * per_batch)

    async def one(client: httpx.AsyncClient, b: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        numbers = [(b * per_batch + j) % pool for j in range(per_batch)]
        body = b"".join(orjson.dumps(record(n, prefix="r-")) + b"\n" for n in numbers)
        async with slots:
            while True:
                r = await client.post(
                    f"/v1/datasets/{dataset}/import",
                    params={"mode": "upsert"},
                    content=body,
                    headers={"Content-Type": "application/x-ndjson"},
                )
                if r.status_code != 503:
                    break
                await asyncio.sleep(0.02)
        acked = time.monotonic()
        if r.status_code != 200:
            raise RuntimeError(f"import: {r.status_code} {r.text}")
        writes.note([f"r-{n}" for n in numbers], acked)

    async with api_client(server, token, timeout=60) as client:
        writes.started = time.monotonic() + 0.2
        start = writes.started
        tasks = [
            asyncio.create_task(one(client, b, start + b / batches_per_s)) for b in range(batches)
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    writes.ended = max(writes.acked.values())
    return writes


async def paced_puts(
    server: Server, token: str, dataset: str, rate: float, seconds: float
) -> Writes:
    """``rate`` PUTs a second (open loop), from a pool of 4 s of writes."""
    writes = Writes()
    count = round(rate * seconds)
    pool = max(2, round(rate * 4))

    async def one(client: httpx.AsyncClient, n: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        sku = f"r-{n % pool}"
        body = {**record(n, prefix="r-"), "sku": sku}
        r = await client.put(f"/v1/datasets/{dataset}/records/{sku}", json=body)
        acked = time.monotonic()
        if r.status_code not in (200, 201):
            raise RuntimeError(f"write {sku}: {r.status_code} {r.text}")
        writes.note([sku], acked)

    async with api_client(server, token) as client:
        writes.started = time.monotonic() + 0.2
        tasks = [
            asyncio.create_task(one(client, n, writes.started + n / rate)) for n in range(count)
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    writes.ended = max(writes.acked.values())
    return writes


async def full_speed_puts(
    server: Server, token: str, dataset: str, count: int, writers: int
) -> Writes:
    """``count`` PUTs by ``writers`` writers as fast as acknowledged (each record written
    by one writer, versions in order)."""
    writes = Writes()
    pool = max(writers * 4, count // 3)
    numbers = iter(range(count))

    async def writer(client: httpx.AsyncClient) -> None:
        for n in numbers:  # shared iterator: each number is taken by exactly one writer
            sku = f"r-{n % pool}"
            body = {**record(n, prefix="r-"), "sku": sku}
            r = await client.put(f"/v1/datasets/{dataset}/records/{sku}", json=body)
            acked = time.monotonic()
            if r.status_code not in (200, 201):
                raise RuntimeError(f"write {sku}: {r.status_code} {r.text}")
            writes.note([sku], acked)

    limits = httpx.Limits(max_connections=writers + 2)
    async with httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        limits=limits,
    ) as client:
        writes.started = time.monotonic()
        tasks = [asyncio.create_task(writer(client)) for _ in range(writers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    writes.ended = max(writes.acked.values())
    return writes


# --- one scenario ---------------------------------------------------------


@dataclass
class Outcome:
    name: str
    endpoints: int
    writes: Writes
    arrivals: list[Arrival]
    rejected: int
    complete: bool
    notes: dict[str, Any] = field(default_factory=dict)

    def latencies(self, endpoints: set[int] | None = None, window: Any = None) -> list[float]:
        """ms from the ack to the first arrival of each event (at the given endpoints, for
        events acked within ``window``: (from, to) monotonic)."""
        first: dict[tuple[int, Key], float] = {}
        for a in self.arrivals:
            k = (a.endpoint, a.key)
            if k not in first or a.at < first[k]:
                first[k] = a.at
        out = []
        for (endpoint, key), at in first.items():
            if endpoints is not None and endpoint not in endpoints:
                continue
            acked = self.writes.acked.get(key)
            if acked is None or (window and not window[0] <= acked < window[1]):
                continue
            out.append(max(0.0, at - acked) * 1000)
        return out

    def exactness(self) -> dict[str, int]:
        expected = set(self.writes.acked)
        by_endpoint: dict[int, list[Arrival]] = defaultdict(list)
        for a in self.arrivals:
            by_endpoint[a.endpoint].append(a)
        missing = duplicates = unexpected = order = 0
        for endpoint in range(self.endpoints):
            got = by_endpoint.get(endpoint, [])
            ids = Counter(a.webhook_id for a in got)
            duplicates += sum(n - 1 for n in ids.values())
            keys = {a.key for a in got}
            missing += len(expected - keys)
            unexpected += len(keys - expected)
            last: dict[str, int] = {}
            for a in sorted(got, key=lambda a: a.at):
                rid, version = a.key
                if version < last.get(rid, 0):
                    order += 1
                last[rid] = max(version, last.get(rid, 0))
        return {
            "missing": missing,
            "duplicates": duplicates,
            "unexpected": unexpected,
            "order_violations": order,
        }

    @property
    def deliveries(self) -> int:
        return len({(a.endpoint, a.key) for a in self.arrivals})

    def rates(self) -> dict[str, float]:
        times = sorted(a.at for a in self.arrivals)
        if not times:
            return {"deliveries_per_s": 0.0, "drain_s": float("nan"), "longest_gap_s": 0.0}
        last = times[-1]
        return {
            "deliveries_per_s": self.deliveries / (last - self.writes.started),
            "drain_s": max(0.0, last - self.writes.ended),
            "longest_gap_s": max((b - a for a, b in itertools.pairwise(times)), default=0.0),
        }


WriteFn = Callable[[Server, str, str], Awaitable[Writes]]


async def scenario(
    name: str,
    server: Server,
    token: str,
    url: str,
    work_dir: Path,
    args: argparse.Namespace,
    *,
    endpoints: int,
    apps: int,
    processes: int,
    write: WriteFn,
    outage: tuple[float, float] | None = None,
) -> Outcome:
    """Subscribe ``endpoints`` webhooks to a new dataset, start their receivers, write,
    wait for every delivery (or ``--wait``), and collect what arrived."""
    dataset = f"hooks-{name}"
    async with api_client(server, token) as admin:
        await create_org(admin, ORG)
        await create_dataset(admin, ORG, dataset, url)
        keys = [await make_app(admin, f"{name}-{i}") for i in range(apps)]
    # Endpoint 0 gets a process of its own in the outage scenario (it is the one stopped).
    groups = [[0], *[list(range(1, endpoints))[p::processes] for p in range(processes)]]
    if outage is None:
        groups = [list(range(endpoints))[p::processes] for p in range(processes)]
    groups = [g for g in groups if g]
    procs = [ReceiverProcess({}, work_dir) for _ in groups]
    owner = {e: procs[i] for i, g in enumerate(groups) for e in g}
    for e in range(endpoints):
        app_id, key = keys[e % apps]
        _, secret = await subscribe(server, app_id, key, owner[e].url(e), dataset)
        owner[e].secrets[e] = secret
    rejected = 0
    try:
        for p in procs:
            p.start()
        events: list[str] = []

        async def outage_plan(started: float) -> None:
            assert outage is not None
            down_at, down_for = outage
            await asyncio.sleep(max(0.0, started + down_at - time.monotonic()))
            await asyncio.to_thread(owner[0].stop)
            events.append(f"down {time.monotonic() - started:.1f}")
            await asyncio.sleep(max(0.0, started + down_at + down_for - time.monotonic()))
            await asyncio.to_thread(owner[0].start)
            events.append(f"up {time.monotonic() - started:.1f}")

        plan = asyncio.create_task(outage_plan(time.monotonic() + 0.2)) if outage else None
        writes = await write(server, token, dataset)
        if plan is not None:
            await plan
        expected = len(writes.acked) * endpoints
        deadline = time.monotonic() + args.wait
        complete = False
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                counts = await asyncio.gather(*(p.count(client) for p in procs))
                if (
                    sum(c[0] for c in counts) + sum(len(p.arrivals()) for p in procs if p.lives > 1)
                    >= expected
                ):
                    complete = True
                    break
                await asyncio.sleep(0.1)
        await asyncio.sleep(args.settle)  # a duplicate sent late would arrive by now
        async with httpx.AsyncClient(timeout=5) as client:
            rejected = sum(c[1] for c in await asyncio.gather(*(p.count(client) for p in procs)))
    finally:
        for p in procs:
            p.stop()
    arrivals = [a for p in procs for a in p.arrivals()]
    outcome = Outcome(name, endpoints, writes, arrivals, rejected, complete)
    outcome.notes["events"] = events
    return outcome


# --- the report -----------------------------------------------------------


def row(label: str, o: Outcome, lat: list[float]) -> str:
    r = o.rates()
    return (
        f"| {label} | {len(o.writes.acked)} | {o.writes.per_second:.0f} | {o.deliveries} "
        f"| {r['deliveries_per_s']:.0f} | {statistics.median(lat) if lat else float('nan'):.0f} ms "
        f"| {percentile(lat, 0.99):.0f} ms | {max(lat, default=float('nan')):.0f} ms "
        f"| {r['drain_s']:.1f} s |"
    )


def exact_line(o: Outcome) -> str:
    e = o.exactness()
    verdict = (
        "every event arrived at every endpoint exactly once, in order per record"
        if not any(e.values()) and o.complete
        else f"**{e['missing']} missing, {e['duplicates']} duplicate deliveries, "
        f"{e['unexpected']} unexpected, {e['order_violations']} out of order per record**"
        + ("" if o.complete else " (not complete within --wait)")
    )
    return f"- {o.name}: {verdict}; {o.rejected} requests failed verification"


def report(outcomes: dict[str, Outcome], args: argparse.Namespace, load: list[float]) -> str:
    command = " ".join([".venv/bin/python", "bench/webhooks.py", *sys.argv[1:]])
    lines = [
        "",
        "## Webhooks at scale",
        "",
        f"One `entrepot serve` ({args.server_workers} worker(s), webhook defaults: "
        "256 in flight per worker, each endpoint's limit adapting up to 64) delivering to",
        "receivers in processes of their own (bench/hook_receiver.py under uvicorn, verifying",
        "every delivery with `standardwebhooks`); writers, receivers, server and PostgreSQL",
        f"share the machine. Retry schedule `{args.schedule}`. Latency: receiver arrival minus",
        "the writer's 2xx (just after the commit). Writes upsert records from a pool, so",
        "records get several versions and per-record order is checked at every endpoint.",
        "",
        "| scenario | writes | writes/s | deliveries | deliveries/s | p50 | p99 | max | drain |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in (
        ("single", f"one endpoint, imports offered at {args.rate:g}/s"),
        ("puts", f"one endpoint, {args.writers} PUT writers at full speed"),
        ("fanout", f"{args.endpoints} endpoints, {args.fanout_rate:g} writes/s each"),
    ):
        if name in outcomes:
            lines.append(row(label, outcomes[name], outcomes[name].latencies()))
    outage = outcomes.get("outage")
    if outage is not None:
        others = set(range(1, outage.endpoints))
        start = outage.writes.started
        down_at, down_for = args.down_at, args.down_for
        before = (start, start + down_at)
        during = (start + down_at, start + down_at + down_for)
        after = (start + down_at + down_for, float("inf"))
        n = outage.endpoints
        for label, window in (("before", before), ("while down", during), ("after", after)):
            lines.append(
                row(
                    f"outage: {n - 1} others, events {label}",
                    outage,
                    outage.latencies(others, window),
                )
            )
        lines.append(row("outage: the endpoint down, all events", outage, outage.latencies({0})))
        up = [a.at for a in outage.arrivals if a.endpoint == 0]
        caught = max(up) - (start + down_at + down_for) if up else float("nan")
        lines += [
            "",
            f"- outage: {n} endpoints at {args.outage_rate:g} writes/s; endpoint 0's receiver "
            f"stopped at {down_at:g} s for {down_for:g} s ({', '.join(outage.notes['events'])} "
            f"s after the first write); its last delivery arrived {caught:.1f} s after it "
            "came back",
        ]
    lines.append("")
    lines += [exact_line(o) for o in outcomes.values()]
    lines += [
        f"- date (UTC): {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}",
        f"- command: `{command}`",
        f"- machine: {machine()}",
        "- load average (1 min) before each scenario: "
        + ", ".join(f"{name} {v:.2f}" for name, v in zip(outcomes, load, strict=False))
        + " (other sessions share these cores)",
        f"- git: {git_version()}",
        "",
    ]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------


async def run(args: argparse.Namespace) -> tuple[dict[str, Outcome], list[float]]:
    token = "bench-" + secrets.token_hex(16)  # serve refuses bootstrap tokens under 32 characters
    name, url = await create_database(args.pg, "bench_hooks")
    server: Server | None = None
    work_dir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    outcomes: dict[str, Outcome] = {}
    load: list[float] = []
    try:
        await prepare_store(url, token)
        env = {
            "ENTREPOT_LOG_LEVEL": "warning",
            "ENTREPOT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "ENTREPOT_WEBHOOK_RETRY_SCHEDULE": args.schedule,
        }
        server = start_entrepot(url, token, args.server_workers, work_dir, env)
        print(f"server log: {server.log_path}", flush=True)

        async def single(s: Server, t: str, ds: str) -> Writes:
            return await paced_imports(s, t, ds, args.rate, args.seconds, args.batches_per_s)

        async def puts(s: Server, t: str, ds: str) -> Writes:
            return await full_speed_puts(s, t, ds, args.records, args.writers)

        async def fanout(s: Server, t: str, ds: str) -> Writes:
            return await paced_puts(s, t, ds, args.fanout_rate, args.seconds)

        async def outage(s: Server, t: str, ds: str) -> Writes:
            return await paced_puts(s, t, ds, args.outage_rate, args.outage_seconds)

        plans: dict[str, dict[str, Any]] = {
            "single": {"endpoints": 1, "apps": 1, "processes": args.processes, "write": single},
            "puts": {"endpoints": 1, "apps": 1, "processes": 1, "write": puts},
            "fanout": {
                "endpoints": args.endpoints,
                "apps": args.apps,
                "processes": args.processes,
                "write": fanout,
            },
            "outage": {
                "endpoints": args.outage_endpoints,
                "apps": 1,
                "processes": max(1, args.processes - 1),
                "write": outage,
                "outage": (args.down_at, args.down_for),
            },
        }
        for scenario_name in args.scenarios.split(","):
            load.append(os.getloadavg()[0])
            print(f"scenario {scenario_name} (load {load[-1]:.2f})", flush=True)
            outcomes[scenario_name] = await scenario(
                scenario_name, server, token, url, work_dir, args, **plans[scenario_name]
            )
        return outcomes, load
    finally:
        if server is not None:
            server.stop()
        await drop_database(args.pg, name)
        shutil.rmtree(work_dir, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios", default="single,puts,fanout,outage", help="comma-separated, in order"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="single: events/s offered")
    parser.add_argument("--batches-per-s", type=float, default=20.0, help="single: imports/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="single, fanout: duration")
    parser.add_argument("--records", type=int, default=3000, help="puts: writes")
    parser.add_argument("--writers", type=int, default=8, help="puts: concurrent writers")
    parser.add_argument("--endpoints", type=int, default=100, help="fanout: endpoints")
    parser.add_argument("--apps", type=int, default=10, help="fanout: apps owning them")
    parser.add_argument("--fanout-rate", type=float, default=10.0, help="fanout: writes/s")
    parser.add_argument("--outage-endpoints", type=int, default=10, help="outage: endpoints")
    parser.add_argument("--outage-rate", type=float, default=50.0, help="outage: writes/s")
    parser.add_argument("--outage-seconds", type=float, default=30.0, help="outage: duration")
    parser.add_argument("--down-at", type=float, default=8.0, help="outage: stop after (s)")
    parser.add_argument("--down-for", type=float, default=10.0, help="outage: for (s)")
    parser.add_argument("--processes", type=int, default=2, help="receiver processes")
    parser.add_argument("--server-workers", type=int, default=1, help="entrepot serve --workers")
    parser.add_argument("--schedule", default=SCHEDULE, help="ENTREPOT_WEBHOOK_RETRY_SCHEDULE")
    parser.add_argument("--wait", type=float, default=120.0, help="max wait for deliveries (s)")
    parser.add_argument("--settle", type=float, default=2.0, help="wait for late duplicates (s)")
    parser.add_argument(
        "--pg",
        default=DEFAULT_PG_URL,
        help="a superuser PostgreSQL URL, or 'embedded' for a private embedded server",
    )
    parser.add_argument("--append", action="store_true", help=f"append to {RESULTS.name}")
    args = parser.parse_args()

    embedded = None
    data_dir: Path | None = None
    if args.pg == "embedded":
        from entrepot.store.embedded import EmbeddedPostgres

        data_dir = Path(tempfile.mkdtemp(prefix="bench-webhooks-pg-"))
        embedded = EmbeddedPostgres(data_dir)
        args.pg = embedded.start()
    try:
        outcomes, load = await run(args)
    finally:
        if embedded is not None:
            embedded.stop()
        if data_dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(data_dir)
    publish(report(outcomes, args, load), args.append)


if __name__ == "__main__":
    asyncio.run(main())
