"""Three `entrepot serve` replicas behind a real HAProxy, all on loopback: the part a
Kubernetes Service and its kubelets play in production, played by processes a test
can SIGKILL, SIGTERM and start again.

HAProxy is configured as production would be: round robin over the replicas that
answer ``GET /readyz`` 200 (checked every 500 ms, out after 2 failures, back after
2 successes), a request whose connection to a replica failed sent to another
(``retry-on conn-failure`` with ``option redispatch``; a request that reached a
replica is never replayed by the balancer: only the client knows whether it is
safe to). Replicas drain for longer than HAProxy takes to notice
(``ENTREPOT_DRAIN_SECONDS`` > check interval x fall).
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from tests.chaos.load import (
    Audit,
    Follower,
    Ledger,
    Retry,
    audit,
    longest_gap,
    read,
    read_export,
    read_feed,
    write,
)
from tests.conftest import ADMIN_TOKEN
from tests.e2e.test_feed_replicas import new_dataset
from tests.e2e.test_serve import die_with_parent, spawn, wait_ready
from tests.waiting import until

CHECK_INTER = 0.5  # seconds between HAProxy's health checks of a replica
FALL = 2  # failed checks that take a replica out
RISE = 2  # passed checks that bring it back
DRAIN_SECONDS = 3.0  # > CHECK_INTER * FALL, with room for a loaded machine's late checks
SHUTDOWN_SECONDS = 10.0  # for the requests in flight once the drain is over
STOP_WITHIN = DRAIN_SECONDS + SHUTDOWN_SECONDS + 10.0  # a SIGTERMed replica is gone by then

HAPROXY_CONFIG = """\
global
    log stdout format raw local0
    maxconn 2000

defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 2s
    # A connection a replica refused (it died, or stopped accepting) is tried again at
    # once on another one (redispatch on every retry); a request a replica received is
    # never replayed here: only the client knows whether that is safe.
    retries 2
    option redispatch 1
    retry-on conn-failure

frontend api
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    default-server check inter {inter_ms}ms fall {fall} rise {rise}
{servers}

frontend stats
    bind 127.0.0.1:{stats_port}
    http-request set-log-level silent
    stats enable
    stats uri /stats
"""


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (each socket held until all are chosen)."""
    with ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


@dataclass
class Replica:
    """One `entrepot serve` (one worker) on a port of its own, kept across its lives."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    lives: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """A new life on the same port (what a supervisor does); returns at once."""
        assert not self.running, f"{self.name} is running"
        self.lives += 1
        with self.log.open("ab") as out:
            out.write(f"--- {self.name}, life {self.lives}\n".encode())
        self.proc = spawn(self.env, "--workers", "1", port=self.port, log=self.log)

    def wait_ready(self) -> None:
        assert self.proc is not None
        wait_ready(self.proc, self.base, self.log)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def exited(self, within: float = STOP_WITHIN) -> int:
        """The exit status, once the process has gone (fails the test if it has not)."""
        proc = self.proc
        assert proc is not None

        async def gone() -> bool:
            return proc.poll() is not None

        await until(gone, f"{self.name} exits", within=within)
        return proc.returncode

    def errors(self) -> list[str]:
        """What this replica logged at error level, in all its lives (and any traceback
        printed outside the log)."""
        said = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                entry = orjson.loads(line)
                if entry.get("level") in ("error", "critical"):
                    said.append(line[:2000])
            elif line.startswith("Traceback"):
                said.append(line)
        return said

    def kill(self) -> None:
        """SIGKILL and reap: no drain, no goodbye, requests in flight cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@dataclass
class HAProxy:
    """A real HAProxy process in front of ``replicas``, with its stats page for state."""

    binary: str
    replicas: list[Replica]
    directory: Path
    port: int
    stats_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "haproxy.log"

    def config(self) -> str:
        servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port}" for r in self.replicas)
        return HAPROXY_CONFIG.format(
            port=self.port,
            stats_port=self.stats_port,
            inter_ms=int(CHECK_INTER * 1000),
            fall=FALL,
            rise=RISE,
            servers=servers,
        )

    def start(self) -> None:
        path = self.directory / "haproxy.cfg"
        path.write_text(self.config())
        checked = subprocess.run(
            [self.binary, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-db", "-f", str(path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

    async def states(self) -> dict[str, str]:
        """Each replica's state as HAProxy has it: "UP", "DOWN", "UP 1/2" (failing)...;
        none while HAProxy is starting."""
        assert self.proc is not None
        assert self.proc.poll() is None, f"HAProxy exited: {self.log.read_text()[-2000:]}"
        try:
            async with httpx.AsyncClient(timeout=5) as c:
                answer = await c.get(f"http://127.0.0.1:{self.stats_port}/stats;csv")
        except httpx.TransportError:
            return {}  # not listening yet
        answer.raise_for_status()
        rows = csv.DictReader(io.StringIO(answer.text.removeprefix("# ")))
        names = {r.name for r in self.replicas}
        return {row["svname"]: row["status"] for row in rows if row["svname"] in names}

    async def in_rotation(self, replica: Replica) -> bool:
        """Whether HAProxy sends it requests (UP, or UP with a failed check or so)."""
        return (await self.states()).get(replica.name, "").startswith("UP")

    async def wait_in_rotation(self, replica: Replica, within: float = 60) -> None:
        await until(
            lambda: self.in_rotation(replica), f"HAProxy has {replica.name} up", within=within
        )

    async def wait_out_of_rotation(self, replica: Replica, within: float = 60) -> None:
        async def out() -> bool:
            return not await self.in_rotation(replica)

        await until(out, f"HAProxy takes {replica.name} out", within=within)

    async def wait_all_in_rotation(self, within: float = 60) -> None:
        async def all_up() -> bool:
            states = (await self.states()).values()
            return len(states) == len(self.replicas) and all(s.startswith("UP") for s in states)

        await until(all_up, "HAProxy has every replica up", within=within)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Cluster:
    """The replicas, the balancer in front of them, and the database behind them."""

    replicas: list[Replica]
    haproxy: HAProxy
    database_url: str  # the replicas' database
    admin_url: str  # a superuser on the same server, for what an operator would do

    @property
    def base(self) -> str:
        """Where clients connect: the balancer."""
        return self.haproxy.base

    async def terminate_connections(self) -> int:
        """What a PostgreSQL restart, a failover or an operator does to the replicas:
        end every connection they hold to the database (in flight or idle)."""
        database = self.database_url.rsplit("/", 1)[1].split("?")[0]
        conn = await asyncpg.connect(self.admin_url)
        try:
            ended: int = await conn.fetchval(
                "SELECT count(*) FROM ("
                "  SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                "  WHERE datname = $1 AND pid <> pg_backend_pid()) AS ended",
                database,
            )
        finally:
            await conn.close()
        return ended


@contextmanager
def cluster(
    haproxy_binary: str, database_url: str, admin_url: str, directory: Path
) -> Iterator[Cluster]:
    """Three replicas on ``database_url`` (migrated, with ADMIN_TOKEN's key) and HAProxy
    in front, all up; every process killed on the way out, whatever happened."""
    env = {
        "ENTREPOT_DATABASE_URL": database_url,
        "ENTREPOT_LOG_FORMAT": "json",
        "ENTREPOT_LOG_LEVEL": "warning",
        "ENTREPOT_DRAIN_SECONDS": str(DRAIN_SECONDS),
        "ENTREPOT_SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN_SECONDS),
    }
    port, stats_port, *ports = free_ports(2 + 3)
    replicas = [Replica(f"r{n}", p, env, directory / f"r{n}.log") for n, p in enumerate(ports, 1)]
    haproxy = HAProxy(haproxy_binary, replicas, directory, port, stats_port)
    with ExitStack() as stack:
        for replica in replicas:
            stack.callback(replica.kill)
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        stack.callback(haproxy.stop)
        haproxy.start()
        built = Cluster(replicas, haproxy, database_url, admin_url)
        asyncio.run(haproxy.wait_all_in_rotation())
        yield built


WRITERS = 6
KEYS_PER_WRITER = 8
READERS = 2
# A client's patience with one request: long enough for any disruption here to pass,
# short enough that a broken build fails in bounded time.
RETRY = Retry(deadline=30.0, first_pause=0.05, max_pause=1.0)

Disruption = Callable[[Cluster, list[str]], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    """What one disruption under load produced: the clients' ledger and the store's audit."""

    name: str
    ledger: Ledger
    audit: Audit
    follower: Follower
    feed: list[dict[str, Any]]
    disrupted: float  # seconds the disruption lasted
    outage: float  # the longest stretch without an acknowledged write meanwhile
    events: list[str]

    @property
    def slowest_write(self) -> float:
        return max((ack.took for ack in self.ledger.acks), default=0.0)

    def summary(self) -> str:
        t, a = self.ledger, self.audit
        return (
            f"{self.name}: attempted {t.writes + t.reads} ({t.writes} writes, {t.reads} reads), "
            f"acknowledged {len(t.acks)} ({t.replayed} by a replay), failures {t.failures}, "
            f"lost {len(a.lost)}, "
            f"duplicated {len(a.duplicated)}, feed gaps {len(a.gaps) + len(self.follower.gaps)}, "
            f"max write outage {self.outage:.2f} s (slowest write {self.slowest_write:.2f} s) "
            f"over {self.disrupted:.1f} s; {'; '.join(self.events)}; "
            f"tries {dict(sorted(t.attempts.items()))}"
        )


def client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=httpx.Timeout(10.0),
        limits=httpx.Limits(max_connections=WRITERS + READERS + 4),
    )


async def versions_of(c: httpx.AsyncClient, records: str) -> dict[str, int]:
    """Each record's version as the store has it (one page: the key space is small)."""
    answer = await c.get(records, params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["next_cursor"] is None
    return {record["id"]: record["version"] for record in page["data"]}


async def under_load(cluster: Cluster, name: str, disrupt: Disruption) -> Outcome:
    """Run ``disrupt`` while writers, readers and a feed follower work through the
    balancer; then, with every replica back, audit what the store holds."""
    ledger, follower, stop = Ledger(), Follower(), asyncio.Event()
    events: list[str] = []
    async with client(cluster.base) as c:
        ds = await new_dataset(c)
        records = f"/v1/datasets/{ds}/records"
        load = [
            *(write(c, records, n, KEYS_PER_WRITER, ledger, RETRY, stop) for n in range(WRITERS)),
            *(read(c, records, ledger, RETRY, stop) for _ in range(READERS)),
            follower.follow(c, ds, ledger, RETRY, stop),
        ]
        tasks = [asyncio.create_task(work) for work in load]
        try:
            await until(lambda: flowing(ledger, 0), "the load flows", every=0.2)
            began = time.monotonic()
            await disrupt(cluster, events)
            ended = time.monotonic()
            await until(lambda: flowing(ledger, ended), "the load flows again", every=0.2)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        stop.set()
        await asyncio.gather(*tasks)
        await cluster.haproxy.wait_all_in_rotation()
        await follower.catch_up(c, ds, ledger, RETRY)
        feed = await read_feed(c, ds)
        export = await read_export(c, ds)
        versions = await versions_of(c, records)
    return Outcome(
        name=name,
        ledger=ledger,
        audit=audit(ledger, feed, export, versions),
        follower=follower,
        feed=feed,
        disrupted=ended - began,
        outage=longest_gap([ack.at for ack in ledger.acks], began, ended),
        events=events,
    )


async def flowing(ledger: Ledger, since: float) -> bool:
    """Every writer has had a write acknowledged after ``since``."""
    recent = itertools.takewhile(lambda ack: ack.at > since, reversed(ledger.acks))
    return len({ack.body["w"] for ack in recent}) == WRITERS
