"""Webhook delivery latency and throughput: `entrepot serve` POSTing to a real receiver.

A fresh database, one `entrepot serve` (loopback allowed as a webhook
destination through ENTREPOT_WEBHOOK_ALLOWED_NETWORKS), one app with a key and
a webhook following one dataset. The receiver is an ASGI app under uvicorn in
a thread of this process (its own event loop) on 127.0.0.1: it verifies every
delivery with the `standardwebhooks` library, answers 204, and records the
arrival time per (record id, version) and the webhook-id. Two phases:

  latency      new records PUT at a steady rate (open loop, default 20/s for
               15 s); per event, receiver arrival minus the writer's
               acknowledgement (the 2xx, which comes just after the commit,
               so this slightly under-states commit-to-delivery; negative
               values, the delivery winning the race, count as 0)
  throughput   N new records PUT as fast as acknowledged by W concurrent
               writers; deliveries/s from the first write to the last arrival
               (bounded wait), and the drain time after the last ack

Every event must arrive exactly once: distinct webhook-ids are counted, and
repeats are reported as duplicates. Everything talks to 127.0.0.1; the
server gets SIGTERM, the receiver stops, the database is dropped (and an
embedded PostgreSQL stopped and deleted) at the end, whatever happens.

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
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from _common import (
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
    prepare_store,
    publish,
    record,
    start_entrepot,
)

ORG = "hookbench"
DATASET = "hook-bench"
APP_SCOPES = ["datasets:read", "records:read", "changes:read", "webhooks:manage"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


# --- the receiver ---------------------------------------------------------


@dataclass
class Receiver:
    """An ASGI webhook endpoint under uvicorn in a thread; verifies and timestamps deliveries.

    Arrival times are ``time.monotonic()`` taken once the whole body has been
    read, comparable with the writers' acknowledgement times (same process).
    """

    port: int = field(default_factory=free_port)
    verifier: Webhook | None = None
    first_arrival: dict[tuple[str, int], float] = field(default_factory=dict)
    per_event: Counter[tuple[str, int]] = field(default_factory=Counter)
    webhook_ids: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        config = uvicorn.Config(
            self.app,
            host=HOST,
            port=self.port,
            loop="asyncio",
            http="auto",
            interface="asgi3",
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        arrived = time.monotonic()
        status = self.note(b"".join(chunks), scope, arrived)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def note(self, raw: bytes, scope: Scope, arrived: float) -> int:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        with self.lock:
            self.requests += 1
            verifier = self.verifier
        if scope["method"] != "POST" or verifier is None:
            with self.lock:
                self.rejected += 1
            return 400
        try:
            verifier.verify(raw, headers)
        except WebhookVerificationError:
            with self.lock:
                self.rejected += 1
            return 400
        change = orjson.loads(raw)["data"]
        key = (str(change["id"]), int(change["version"]))
        with self.lock:
            self.webhook_ids[headers["webhook-id"]] += 1
            self.per_event[key] += 1
            self.first_arrival.setdefault(key, arrived)
        return 204

    def arrivals(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], float]:
        with self.lock:
            return {k: self.first_arrival[k] for k in keys if k in self.first_arrival}

    async def wait_for(self, keys: list[tuple[str, int]], within: float) -> bool:
        """Whether every key arrived within ``within`` seconds (polls, never blocks the loop)."""
        deadline = time.monotonic() + within
        while len(self.arrivals(keys)) < len(keys):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True


# --- the platform ---------------------------------------------------------


@dataclass(frozen=True)
class Hook:
    webhook_id: str
    secret: str


async def subscribe(server: Server, token: str, url: str, target: str) -> Hook:
    """Org, dataset, app and key, then a webhook for the dataset created by the app."""
    async with api_client(server, token) as admin:
        await create_org(admin, ORG)
        await create_dataset(admin, ORG, DATASET, url)
        app = await admin.post("/v1/apps", json={"org": ORG, "name": "hooks", "scopes": APP_SCOPES})
        if app.status_code != 201:
            raise RuntimeError(f"create app: {app.status_code} {app.text}")
        app_id = app.json()["id"]
        key = await admin.post(f"/v1/apps/{app_id}/keys", json={"name": "hooks"})
        if key.status_code != 201:
            raise RuntimeError(f"create key: {key.status_code} {key.text}")
    async with api_client(server, key.json()["key"]) as as_app:
        created = await as_app.post(
            f"/v1/apps/{app_id}/webhooks", json={"url": target, "datasets": [DATASET]}
        )
    if created.status_code != 201:
        raise RuntimeError(f"create webhook: {created.status_code} {created.text}")
    body = created.json()
    return Hook(body["id"], body["secret"])


async def put(client: httpx.AsyncClient, sku: str, n: int, prefix: str) -> float:
    """PUT a new record; return the monotonic time its 2xx was received."""
    r = await client.put(f"/v1/datasets/{DATASET}/records/{sku}", json=record(n, prefix=prefix))
    acked = time.monotonic()
    if r.status_code != 201:
        raise RuntimeError(f"write {sku}: {r.status_code} {r.text}")
    return acked


async def delivery_outcomes(metrics_port: int) -> dict[str, float]:
    """``entrepot_webhook_deliveries_total`` by outcome, from the server's metrics listener."""
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{metrics_port}", timeout=10) as client:
        text = (await client.get("/metrics")).text
    out: dict[str, float] = {}
    prefix = 'entrepot_webhook_deliveries_total{outcome="'
    for line in text.splitlines():
        if line.startswith(prefix):
            outcome = line[len(prefix) :].split('"', 1)[0]
            out[outcome] = float(line.split()[-1])
    return out


# --- the phases -----------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latencies_ms(acked: dict[str, float], arrived: dict[tuple[str, int], float]) -> list[float]:
    return [max(0.0, arrived[(sku, 1)] - t) * 1000 for sku, t in acked.items()]


async def latency_phase(
    server: Server, token: str, receiver: Receiver, args: argparse.Namespace
) -> dict[str, float]:
    """Writes at a steady rate (each write its own task, so a slow one delays no other)."""
    count = round(args.rate * args.seconds)
    acked: dict[str, float] = {}

    async def one(client: httpx.AsyncClient, n: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        sku = f"lat-{n}"
        acked[sku] = await put(client, sku, n, "lat-")

    async with api_client(server, token) as client:
        start = time.monotonic() + 0.2
        tasks = [asyncio.create_task(one(client, n, start + n / args.rate)) for n in range(count)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    keys = [(sku, 1) for sku in acked]
    complete = await receiver.wait_for(keys, args.wait)
    arrived = receiver.arrivals(keys)
    lat = latencies_ms({s: t for s, t in acked.items() if (s, 1) in arrived}, arrived)
    return {
        "writes": len(acked),
        "arrived": len(arrived),
        "complete": float(complete),
        "p50_ms": statistics.median(lat) if lat else float("nan"),
        "p99_ms": percentile(lat, 0.99),
        "max_ms": max(lat, default=float("nan")),
    }


async def throughput_phase(
    server: Server, token: str, receiver: Receiver, args: argparse.Namespace
) -> dict[str, float]:
    """N new records by W writers as fast as acknowledged; deliveries/s until all arrive."""
    acked: dict[str, float] = {}
    numbers = iter(range(args.records))

    async def writer(client: httpx.AsyncClient) -> None:
        for n in numbers:  # shared iterator: each number is taken by exactly one writer
            sku = f"thr-{n}"
            acked[sku] = await put(client, sku, n, "thr-")

    limits = httpx.Limits(max_connections=args.writers + 2)
    async with httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        limits=limits,
    ) as client:
        started = time.monotonic()
        tasks = [asyncio.create_task(writer(client)) for _ in range(args.writers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    last_ack = max(acked.values())
    keys = [(sku, 1) for sku in acked]
    complete = await receiver.wait_for(keys, args.wait)
    arrived = receiver.arrivals(keys)
    last_arrival = max(arrived.values(), default=started)
    first_arrival = min(arrived.values(), default=started)
    lat = latencies_ms({s: t for s, t in acked.items() if (s, 1) in arrived}, arrived)
    times = sorted(arrived.values())
    return {
        "writes": len(acked),
        "arrived": len(arrived),
        "complete": float(complete),
        "longest_gap_s": max((b - a for a, b in itertools.pairwise(times)), default=0.0),
        "writes_per_s": len(acked) / (last_ack - started),
        "deliveries_per_s": len(arrived) / (last_arrival - started)
        if last_arrival > started
        else 0.0,
        "steady_per_s": (len(arrived) - 1) / (last_arrival - first_arrival)
        if last_arrival > first_arrival
        else float("nan"),
        "write_seconds": last_ack - started,
        "total_seconds": last_arrival - started,
        "drain_seconds": max(0.0, last_arrival - last_ack),
        "p50_ms": statistics.median(lat) if lat else float("nan"),
        "p99_ms": percentile(lat, 0.99),
        "max_ms": max(lat, default=float("nan")),
    }


async def measure(
    server: Server,
    token: str,
    url: str,
    receiver: Receiver,
    args: argparse.Namespace,
    metrics_port: int,
) -> dict[str, Any]:
    hook = await subscribe(server, token, url, receiver.url)
    with receiver.lock:
        receiver.verifier = Webhook(hook.secret)
    latency = await latency_phase(server, token, receiver, args)
    throughput = await throughput_phase(server, token, receiver, args)
    await asyncio.sleep(args.settle)  # a duplicate sent late would arrive by now
    with receiver.lock:
        ids = Counter(receiver.webhook_ids)
        per_event = Counter(receiver.per_event)
        rejected, requests = receiver.rejected, receiver.requests
    return {
        "latency": latency,
        "throughput": throughput,
        "events": latency["writes"] + throughput["writes"],
        "distinct_ids": len(ids),
        "duplicates": sum(n - 1 for n in ids.values()),
        "events_repeated": sum(1 for n in per_event.values() if n > 1),
        "distinct_events": len(per_event),
        "rejected": rejected,
        "requests": requests,
        "outcomes": await delivery_outcomes(metrics_port),
    }


# --- the report -----------------------------------------------------------


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    git = git_version()
    command = " ".join([".venv/bin/python", "bench/webhooks.py", *sys.argv[1:]])
    lat, thr = result["latency"], result["throughput"]
    outcomes = ", ".join(f"{k} {v:.0f}" for k, v in sorted(result["outcomes"].items())) or "none"
    once = (
        "every event arrived exactly once"
        if result["duplicates"] == 0
        and result["distinct_events"] == result["events"]
        and result["distinct_ids"] == result["events"]
        else f"{result['distinct_events']} of {result['events']} events arrived, "
        f"{result['distinct_ids']} distinct webhook-ids, {result['duplicates']} duplicate "
        f"deliveries ({result['events_repeated']} events repeated)"
    )
    missing = ""
    for name, phase in (("latency", lat), ("throughput", thr)):
        if not phase["complete"]:
            missing += (
                f"- **{name}: only {phase['arrived']:.0f} of {phase['writes']:.0f} events "
                f"arrived within {args.wait:.0f} s**\n"
            )
    concurrency = args.webhook_concurrency or 8
    return "\n".join(
        [
            "",
            "## Webhooks",
            "",
            "One `entrepot serve` (1 worker, webhook concurrency "
            f"{concurrency}) delivering one webhook to a receiver on 127.0.0.1 (uvicorn in a",
            "thread of the benchmark process, verifying every delivery with `standardwebhooks`,",
            "answering 204); writers, receiver, server and PostgreSQL share the machine.",
            "Latency is receiver arrival minus the writer's 2xx (just after the commit, so it",
            "slightly under-states commit-to-delivery).",
            "",
            "| phase | writes | writes/s | deliveries/s | ack-to-delivery p50 | p99 | max |",
            "|---|---:|---:|---:|---:|---:|---:|",
            f"| steady {args.rate:g}/s for {args.seconds:g} s | {lat['writes']:.0f} "
            f"| {args.rate:g} | - | {lat['p50_ms']:.1f} ms | {lat['p99_ms']:.1f} ms "
            f"| {lat['max_ms']:.1f} ms |",
            f"| {args.writers} writers, full speed | {thr['writes']:.0f} "
            f"| {thr['writes_per_s']:.0f} | {thr['deliveries_per_s']:.0f} "
            f"| {thr['p50_ms']:.0f} ms | {thr['p99_ms']:.0f} ms | {thr['max_ms']:.0f} ms |",
            "",
            f"- throughput: {thr['writes']:.0f} writes acknowledged in "
            f"{thr['write_seconds']:.1f} s, "
            f"all delivered {thr['total_seconds']:.1f} s after the first write "
            f"({thr['drain_seconds']:.1f} s after the last ack); first to last arrival "
            f"{thr['steady_per_s']:.0f} deliveries/s; longest pause between two arrivals "
            f"{thr['longest_gap_s']:.2f} s",
            f"- {once}; {result['rejected']} requests failed verification "
            f"(of {result['requests']}); server outcomes: {outcomes}",
            *([missing.rstrip("\n")] if missing else []),
            f"- date (UTC): {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}",
            f"- command: `{command}`",
            f"- machine: {machine()}",
            f"- load average before the run: {args.load:.2f} (other work shares these cores)",
            f"- git: {git}",
            "",
        ]
    )


# --- main -----------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    token = "bench-" + secrets.token_hex(16)  # serve refuses bootstrap tokens under 32 characters
    name, url = await create_database(args.pg, "bench_hooks")
    server: Server | None = None
    receiver = Receiver()
    try:
        receiver.start()
        await prepare_store(url, token)
        log_dir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
        metrics_port = free_port()
        env = {
            "ENTREPOT_LOG_LEVEL": "warning",
            "ENTREPOT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "ENTREPOT_METRICS_PORT": str(metrics_port),
        }
        if args.webhook_concurrency:
            env["ENTREPOT_WEBHOOK_CONCURRENCY"] = str(args.webhook_concurrency)
        server = start_entrepot(url, token, 1, log_dir, env)
        print(f"server log: {server.log_path}", flush=True)
        return await measure(server, token, url, receiver, args, metrics_port)
    finally:
        if server is not None:
            server.stop()
        receiver.stop()
        await drop_database(args.pg, name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="latency phase writes/s")
    parser.add_argument("--seconds", type=float, default=15.0, help="latency phase duration")
    parser.add_argument("--records", type=int, default=3000, help="throughput phase writes")
    parser.add_argument("--writers", type=int, default=8, help="throughput phase writers")
    parser.add_argument("--wait", type=float, default=120.0, help="max wait for deliveries (s)")
    parser.add_argument("--settle", type=float, default=2.0, help="wait for late duplicates (s)")
    parser.add_argument(
        "--webhook-concurrency", type=int, default=0, help="ENTREPOT_WEBHOOK_CONCURRENCY"
    )
    parser.add_argument(
        "--pg",
        default=DEFAULT_PG_URL,
        help="a superuser PostgreSQL URL, or 'embedded' for a private embedded server",
    )
    parser.add_argument("--append", action="store_true", help=f"append to {RESULTS.name}")
    args = parser.parse_args()

    args.load = os.getloadavg()[0]
    embedded = None
    data_dir: Path | None = None
    if args.pg == "embedded":
        from entrepot.store.embedded import EmbeddedPostgres

        data_dir = Path(tempfile.mkdtemp(prefix="bench-webhooks-pg-"))
        embedded = EmbeddedPostgres(data_dir)
        args.pg = embedded.start()
    try:
        result = await run(args)
    finally:
        if embedded is not None:
            embedded.stop()
        if data_dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(data_dir)
    text = report(result, args)
    publish(text, args.append)


if __name__ == "__main__":
    asyncio.run(main())
