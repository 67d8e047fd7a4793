"""The JetStream publisher through crashes: the publishing replica SIGKILLed and the
NATS server killed and started again, mid-stream, while writers keep writing.

Two `entrepot serve` replicas (tests/chaos/replicas.py) share one database and a
nats-server of the test's own (its own port and store directory: the machine's
shared server is never touched). Writers PUT records through the replica that
survives; meanwhile the lease holder is SIGKILLed (and started again: it rejoins as
a contender) and then nats-server is SIGKILLed and restarted on its store. Then a
JetStream consumer reads the stream from its start: every feed seq once, in
order, at the JetStream sequence equal to it, and each message equal to the feed's
change. Bounded (about 10 s of disruption), so it runs with `make test`; needs
Debian's nats-server (skipped without it, failed so in CI).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from entrepot.streams import admin
from tests.chaos.replicas import Replica, free_ports
from tests.conftest import ADMIN_TOKEN, prepared_database
from tests.e2e.test_feed_replicas import new_dataset
from tests.jetstream.broker import NatsServer, stream_messages
from tests.jetstream.test_publisher import as_feed, whole_feed
from tests.tools import require
from tests.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.replicas]

LEASE_SECONDS = 2.0
WRITERS = 3
KEYS = 5


@pytest.fixture(scope="module")
def world(
    fresh_database: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, NatsServer, list[Replica]]]:
    binary = require("nats-server", "nats-server")
    directory = tmp_path_factory.mktemp("jetstream-chaos")
    url = asyncio.run(prepared_database(fresh_database))
    nats_port, *ports = free_ports(3)
    server = NatsServer(binary, nats_port, directory / "store", directory / "nats.log")
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_LOG_FORMAT": "json",
        "ENTREPOT_LOG_LEVEL": "warning",
        "ENTREPOT_POOL_MAX_SIZE": "6",
        "ENTREPOT_NATS_URL": server.url,
        "ENTREPOT_JETSTREAM_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    replicas = [Replica(f"r{n}", p, env, directory / f"r{n}.log") for n, p in enumerate(ports, 1)]
    try:
        server.start()
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        yield url, server, replicas
    finally:
        for replica in replicas:
            replica.kill()
        server.kill()


async def holder(database_url: str, replicas: list[Replica]) -> Replica | None:
    """The replica whose process holds the publisher's lease now (by its pid)."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT holder FROM publisher_leases WHERE name = 'jetstream' AND expires_at > now()"
        )
    finally:
        await conn.close()
    if row is None:
        return None
    pid = int(row["holder"].split(":")[1])
    return next((r for r in replicas if r.proc is not None and r.proc.pid == pid), None)


async def write(c: httpx.AsyncClient, ds: str, writer: int, stop: asyncio.Event) -> int:
    """Until ``stop``: PUT the writer's keys in turn; how many writes were acknowledged."""
    n = 0
    while not stop.is_set():
        key = f"w{writer}-{n % KEYS}"
        answer = await c.put(
            f"/v1/datasets/{ds}/records/{key}", json={"k": key, "n": n, "w": writer}
        )
        assert answer.status_code in (200, 201), answer.text
        n += 1
    return n


async def test_every_seq_once_in_order_through_a_killed_publisher_and_a_restarted_nats(
    world: tuple[str, NatsServer, list[Replica]],
) -> None:
    database_url, server, replicas = world
    events: list[str] = []
    first = await until(lambda: holder(database_url, replicas), "a replica takes the lease")
    survivor = next(r for r in replicas if r is not first)
    async with httpx.AsyncClient(
        base_url=survivor.base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
    ) as c:
        ds = await new_dataset(c)
        stream = await admin.add(
            database_url, ds, grant=None, stream=None, subject=None, os_user="chaos"
        )
        stop = asyncio.Event()
        writers = [asyncio.create_task(write(c, ds, w, stop)) for w in range(WRITERS)]
        try:
            began = time.monotonic()

            async def published() -> bool:
                return bool(await stream_messages(server.url, stream["stream"], stream["subject"]))

            await until(published, "the stream flows")
            await asyncio.sleep(1.0)  # mid-stream: the load is running, not a condition
            first.kill()
            events.append(
                f"SIGKILLed the publisher {first.name} at {time.monotonic() - began:.1f} s"
            )
            took_over = await until(
                lambda: holder(database_url, [survivor]), "the survivor takes the lease over"
            )
            events.append(f"{took_over.name} took over at {time.monotonic() - began:.1f} s")
            # Started again only now: a replica that restarts within the lease's length
            # may win the lease back first, which is as correct but proves no takeover.
            first.start()
            await asyncio.sleep(1.5)  # let it publish a while before NATS goes
            server.kill()
            events.append(f"SIGKILLed nats-server at {time.monotonic() - began:.1f} s")
            await asyncio.sleep(1.0)  # writes land meanwhile, with nowhere to go
            server.start()
            events.append(f"nats-server back at {time.monotonic() - began:.1f} s")
            await asyncio.sleep(2.0)  # writes go on after the restart, published late
            await asyncio.to_thread(first.wait_ready)  # its new life, a contender again
        finally:
            stop.set()
            written = sum(await asyncio.gather(*writers))
        feed = await whole_feed(c, ds)
        head = feed[-1]["seq"]
        assert head == written  # one change per acknowledged write, none lost

        async def caught_up() -> bool:
            seen = await stream_messages(server.url, stream["stream"], stream["subject"])
            return bool(seen) and int(seen[-1][1]["Entrepot-Seq"]) >= head

        await until(caught_up, f"the stream reaches seq {head}", within=60)

    seen = await stream_messages(server.url, stream["stream"], stream["subject"])
    summary = f"{written} writes; {'; '.join(events)}"
    seqs = [int(headers["Entrepot-Seq"]) for _, headers, _ in seen]
    assert seqs == list(range(1, head + 1)), summary  # every seq, once, in order
    assert [stream_seq for stream_seq, _, _ in seen] == seqs, summary
    assert [as_feed(body) for _, _, body in seen] == feed, summary  # the stream is the feed
    for replica in replicas:
        assert replica.running, f"{replica.name} exited"
        assert replica.errors() == [], f"{replica.name} logged errors"
    print(summary)
