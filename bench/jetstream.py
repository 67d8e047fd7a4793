"""The change feed into NATS JetStream beside the pull feed, in one run.

A fresh database and one `entrepot serve` with ENTREPOT_NATS_URL. A backlog of
N changes (one bulk import) is read by a pull follower over HTTP (the baseline,
pages of 1000), then a stream is configured for the dataset and the publisher
catches up on the same backlog into JetStream. Then W writers PUT records for D
seconds while a JetStream consumer (a push subscription on the subject)
timestamps every message. Reported:

  backlog events/s        HTTP pull follower vs the publisher into JetStream
  committed writes/s      acknowledged writes over the write window
  published events/s      messages the consumer received over the same window
  commit-to-consumer      consumer receipt time minus the writer's acknowledgement
                          of the same change (p50, p99, max; negative counts as 0)

The stream is deleted from NATS and the database dropped at the end.

    .venv/bin/python bench/jetstream.py --backlog 50000 --seconds 10 --writers 16 --append
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import nats
import orjson

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


async def pull_backlog(server: Server, token: str, ds: str, count: int) -> float:
    async with api_client(server, token, timeout=60) as reader:
        started, after, seen = time.monotonic(), 0, 0
        while seen < count:
            page = (
                await reader.get(
                    f"/v1/datasets/{ds}/changes", params={"after": after, "limit": 1000}
                )
            ).json()
            seen += len(page["changes"])
            after = page["last_seq"]
        return seen / (time.monotonic() - started)


async def last_seq(js: nats.js.JetStreamContext, stream: str, subject: str) -> int:
    try:
        found = await js.get_last_msg(stream, subject)
    except nats.js.errors.NotFoundError:
        return 0
    return int((found.headers or {}).get("Entrepot-Seq", 0))


async def measure(
    server: Server, token: str, url: str, args: argparse.Namespace
) -> dict[str, float]:
    from entrepot.streams import admin

    ds = f"js-bench-{secrets.token_hex(3)}"
    async with api_client(server, token, timeout=300) as c:
        await create_org(c, "jsbench")
        await create_dataset(c, "jsbench", ds, url)
        imported = await c.post(
            f"/v1/datasets/{ds}/import",
            content=aiter_chunks(ndjson_chunks(args.backlog, "b-")),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert imported.status_code == 200, imported.text
    result = {"pull_backlog_per_s": await pull_backlog(server, token, ds, args.backlog)}

    nc = await nats.connect(args.nats)
    js = nc.jetstream()
    stream = await admin.add(url, ds, grant=None, stream=None, subject=None, os_user="bench")
    try:
        started = time.monotonic()
        while await last_seq(js, stream["stream"], stream["subject"]) < args.backlog:  # noqa: ASYNC110 - polling NATS
            await asyncio.sleep(0.02)
        result["publish_backlog_per_s"] = args.backlog / (time.monotonic() - started)

        received: dict[str, float] = {}

        async def on_message(msg: nats.aio.msg.Msg) -> None:
            body = orjson.loads(msg.data)
            received[f"{body['id']}:{body['version']}"] = time.monotonic()

        sub = await nc.subscribe(stream["subject"], cb=on_message)
        acked: dict[str, float] = {}
        errors: list[int] = []
        stop = asyncio.Event()

        async def writer(w: int, client: httpx.AsyncClient) -> None:
            n = 0
            while not stop.is_set():
                body = record(n, f"w{w}-")
                try:
                    answer = await client.put(f"/v1/datasets/{ds}/records/{body['sku']}", json=body)
                except httpx.TransportError:
                    errors.append(n)
                    continue  # a connection cut under load: that write is not counted
                assert answer.status_code == 201, answer.text
                acked[f"{body['sku']}:1"] = time.monotonic()
                n += 1

        async with api_client(server, token) as c:
            began = time.monotonic()
            tasks = [asyncio.create_task(writer(w, c)) for w in range(args.writers)]
            await asyncio.sleep(args.seconds)
            stop.set()
            await asyncio.gather(*tasks)
            window = time.monotonic() - began
        deadline = time.monotonic() + 30
        while len(set(acked) & set(received)) < len(acked) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await sub.unsubscribe()
        lat = [max(0.0, received[k] - t) * 1000 for k, t in acked.items() if k in received]
        result.update(
            writes=len(acked),
            missing=len(acked) - len(lat),
            transport_errors=len(errors),
            writes_per_s=len(acked) / window,
            seconds=window,
            p50_ms=percentile(lat, 0.5),
            p99_ms=percentile(lat, 0.99),
            max_ms=max(lat, default=float("nan")),
        )
    finally:
        await js.delete_stream(stream["stream"])
        await nc.close()
    return result


def report(r: dict[str, float], args: argparse.Namespace) -> str:
    command = " ".join([".venv/bin/python", "bench/jetstream.py", *sys.argv[1:]])
    ratio = r["publish_backlog_per_s"] / r["pull_backlog_per_s"]
    return "\n".join(
        [
            "",
            "## Change feed into NATS JetStream",
            "",
            f"A backlog of {args.backlog} changes (one import), then {args.writers} writer tasks "
            f"PUT new records for {args.seconds:g} s through one `entrepot serve`; a JetStream",
            "consumer (push subscription) timestamps every message. Server, NATS, PostgreSQL",
            "and the clients share the machine.",
            "",
            "| backlog: HTTP pull follower | backlog: publisher into JetStream | ratio |",
            "|---:|---:|---:|",
            f"| {r['pull_backlog_per_s']:.0f} events/s | {r['publish_backlog_per_s']:.0f} "
            f"events/s | {ratio:.2f} |",
            "",
            "| committed writes/s | commit-to-consumer p50 | p99 | max | not received |",
            "|---:|---:|---:|---:|---:|",
            f"| {r['writes_per_s']:.0f} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms "
            f"| {r['max_ms']:.1f} ms | {r['missing']:.0f} |",
            "",
            f"- writes cut by a transport error (not counted): {r['transport_errors']:.0f}",
            "",
            f"- date (UTC): {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}",
            f"- command: `{command}`",
            f"- machine: {machine()}",
            f"- load average before the run: {args.load:.2f} (other work shares these cores)",
            f"- git: {git_version()}",
            "",
        ]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--pg", default=DEFAULT_PG_URL, help="a superuser PostgreSQL URL")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS with JetStream")
    parser.add_argument("--append", action="store_true", help=f"append to {RESULTS.name}")
    args = parser.parse_args()
    args.load = os.getloadavg()[0]
    token = "bench-" + secrets.token_hex(16)
    name, url = await create_database(args.pg, "bench_jetstream")
    server = None
    try:
        await prepare_store(url, token)
        env = {"ENTREPOT_LOG_LEVEL": "warning", "ENTREPOT_NATS_URL": args.nats}
        server = start_entrepot(url, token, 1, Path(tempfile.mkdtemp(prefix="bench-js-")), env)
        result = await measure(server, token, url, args)
    finally:
        if server is not None:
            server.stop()
        await drop_database(args.pg, name)
    publish(report(result, args), args.append)


if __name__ == "__main__":
    asyncio.run(main())
