"""Slow and greedy bulk clients beside ordinary callers: does anyone starve?

One `entrepot serve` on a fresh database with a dataset of R records. A
greedy app opens S exports and never reads them (a tiny receive buffer, so
the server's socket buffer fills) and T imports whose bodies trickle in a few
bytes every second. Meanwhile another app's callers GET records by id, C at a
time, for D seconds, each with a 5 s timeout. The same GET load runs first
without the greedy app: that is the baseline of the same run. Reported:

  GET p50/p99/max   latency of the ordinary callers (ms), alone and beside the greedy app
  timeouts          ordinary GETs that took longer than 5 s
  greedy answers    what the greedy app's requests got (200 streams, 429, 503...)
  cut after         how long the server let a stalled export / trickling import live

Everything talks to 127.0.0.1; the server is stopped and the database dropped
at the end, whatever happens.

    .venv/bin/python bench/starvation.py --records 100000 --seconds 20 --append
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' slow clients

import httpx
from tests.e2e.slow_clients import Held, stalled_export, trickling_import

from _common import (
    DEFAULT_PG_URL,
    Server,
    api_client,
    create_database,
    create_dataset,
    create_org,
    drop_database,
    git_version,
    load_rows,
    machine,
    prepare_store,
    publish,
    start_entrepot,
)

TIMEOUT = 5.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Greedy:
    """What the greedy app's requests got, and how long the server kept the admitted ones."""

    answers: dict[str, int] = field(default_factory=dict)
    lifetimes: dict[str, list[float]] = field(default_factory=dict)

    async def note(self, kind: str, held: Awaitable[Held]) -> None:
        outcome = await held
        key = f"{kind} {outcome.answer}"
        self.answers[key] = self.answers.get(key, 0) + 1
        if outcome.cut_after is not None:
            self.lifetimes.setdefault(kind, []).append(outcome.cut_after)


async def callers(
    base: str, token: str, ds: str, ids: int, seconds: float, c: int
) -> tuple[list[float], int, int]:
    """C concurrent loops of GET by id: latencies (ms), timeouts, non-200 answers."""
    latencies: list[float] = []
    timeouts = 0
    errors = 0
    deadline = time.monotonic() + seconds

    async def loop(i: int) -> None:
        nonlocal timeouts, errors
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
        ) as http:
            n = i
            while time.monotonic() < deadline:
                n = (n * 7919 + 13) % ids + 1
                started = time.perf_counter()
                try:
                    response = await http.get(f"/v1/datasets/{ds}/records/sku-{n}")
                except httpx.TimeoutException:
                    timeouts += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors += 1

    await asyncio.gather(*(loop(i) for i in range(c)))
    return latencies, timeouts, errors


async def app_key(http: httpx.AsyncClient, org: str, scopes: list[str]) -> str:
    app = await http.post(
        "/v1/apps", json={"org": org, "name": f"app-{secrets.token_hex(4)}", "scopes": scopes}
    )
    assert app.status_code == 201, app.text
    key = await http.post(f"/v1/apps/{app.json()['id']}/keys", json={"name": "bench"})
    assert key.status_code == 201, key.text
    return str(key.json()["key"])


async def main(args: argparse.Namespace) -> str:
    admin_url = args.pg
    name, url = await create_database(admin_url, "bench_starve")
    token = "bench-starvation-" + secrets.token_hex(16)
    server: Server | None = None
    try:
        await prepare_store(url, token)
        server = start_entrepot(url, token, 1, Path(tempfile.mkdtemp(prefix="starve-")))
        async with api_client(server, token) as admin:
            await admin.patch(
                "/v1/plans/default", json={"rate_per_second": 100000, "burst": 100000}
            )
            await create_org(admin, "starve")
            ds_id = await create_dataset(admin, "starve", "starve", url)
            load_seconds = await load_rows(url, ds_id, args.records)
            scopes = ["datasets:read", "records:read", "records:write"]
            greedy_key = await app_key(admin, "starve", scopes)
            caller_key = await app_key(admin, "starve", scopes)
        base = server.base_url

        alone = await callers(base, caller_key, "starve", args.records, args.seconds, args.c)

        greedy = Greedy()
        limit = args.seconds + 60
        hogs = []
        for i in range(max(args.exports, args.imports)):  # interleaved: both kinds get in
            if i < args.imports:
                hold = trickling_import(server.port, greedy_key, "starve", limit)
                hogs.append(asyncio.ensure_future(greedy.note("import", hold)))
            if i < args.exports:
                hold = stalled_export(server.port, greedy_key, "starve", limit)
                hogs.append(asyncio.ensure_future(greedy.note("export", hold)))
            await asyncio.sleep(0.05)
        await asyncio.sleep(2)  # let them take whatever they can
        beside = await callers(base, caller_key, "starve", args.records, args.seconds, args.c)
        await asyncio.gather(*hogs)
    finally:
        if server is not None:
            server.stop()
        await drop_database(admin_url, name)

    def line(label: str, run: tuple[list[float], int, int]) -> str:
        lat, timeouts, errors = run
        return (
            f"| {label} | {len(lat)} | {percentile(lat, 0.5):.1f} | {percentile(lat, 0.99):.1f} "
            f"| {max(lat) if lat else float('nan'):.1f} | {timeouts} | {errors} |"
        )

    cut = (
        "; ".join(
            f"{kind}: {statistics.median(v):.1f} s median, {max(v):.1f} s max ({len(v)} cut)"
            for kind, v in sorted(greedy.lifetimes.items())
        )
        or "none cut"
    )
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(greedy.answers.items()))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "",
            f"### Starvation: {args.exports} stalled exports + {args.imports} trickling imports "
            f"from one app ({stamp})",
            "",
            f"Machine: {machine()}. Git: {git_version()}. Records: {args.records} "
            f"(loaded in {load_seconds:.1f} s).",
            f"Command: `.venv/bin/python bench/starvation.py --records {args.records} "
            f"--seconds {args.seconds} --exports {args.exports} --imports {args.imports} "
            f"-c {args.c}`",
            "",
            "| ordinary callers (GET by id) | requests | p50 ms | p99 ms | max ms | timeouts "
            "(>5 s) | non-200 |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            line("alone (baseline)", alone),
            line("beside the greedy app", beside),
            "",
            f"Greedy app's answers: {answers}. Admitted ones: {cut}.",
            "",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default=DEFAULT_PG_URL)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--exports", type=int, default=16)
    parser.add_argument("--imports", type=int, default=16)
    parser.add_argument("-c", type=int, default=8, help="concurrent ordinary callers")
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    arguments = parser.parse_args()
    publish(asyncio.run(main(arguments)), arguments.append)
