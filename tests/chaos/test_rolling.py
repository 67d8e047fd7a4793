"""Replicas die and restart under load, and no client notices.

Three `entrepot serve` replicas share one PostgreSQL behind a real HAProxy that
checks `/readyz` (tests/chaos/replicas.py). Six writers PUT records through it,
each write with an Idempotency-Key of its own, retried on connection errors,
429, 502, 503, 504 and a 409 in flight (waiting any Retry-After) until
acknowledged, for 30 s at most; two readers read what was acknowledged; a
follower tails the change feed. Meanwhile:

- a random replica is SIGKILLed every few seconds and started again at once;
- every replica is restarted in turn with SIGTERM, as a rolling update does;
- every connection the replicas hold to PostgreSQL is ended, a few times.

Afterwards, in each case: no client saw a failure (nothing given up, no 500, no
stale read), no acknowledged write is lost or applied twice, the feed from seq 0
is gapless, the follower saw exactly that feed, and it replays to the export;
every replica is live and none logged an error.

A bounded form runs with the suite (about 15 s of disruption each);
``make chaos`` runs it longer (``ENTREPOT_CHAOS_SECONDS``). Needs Debian's
`haproxy` (installed by .ci/run): skipped without it, failed so in CI.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.chaos.load import report
from tests.chaos.replicas import DRAIN_SECONDS, Cluster, Outcome, cluster, under_load
from tests.conftest import prepared_database
from tests.tools import require

pytestmark = [pytest.mark.slow, pytest.mark.replicas]

SECONDS = float(os.environ.get("ENTREPOT_CHAOS_SECONDS", "15"))  # of disruption, each case
CRASH_EVERY = 3.0
CUT_EVERY = 3.0


@pytest.fixture(scope="module")
def fleet(
    fresh_database: object, pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    haproxy = require("haproxy", "haproxy")
    url = asyncio.run(prepared_database(fresh_database))
    with cluster(haproxy, url, pg_admin_url, tmp_path_factory.mktemp("replicas")) as built:
        yield built


async def assert_no_client_noticed(fleet: Cluster, outcome: Outcome) -> None:
    """The promises, each checked apart so a failure names the one broken; and the
    replicas are whole afterwards: each live, none having logged an error."""
    t, a = outcome.ledger, outcome.audit
    assert t.failures == 0, {
        "given up": t.unacknowledged[:3] + t.unanswered[:3],
        "5xx": t.server_errors[:3],
        "unexpected": t.unexpected[:3],
        "stale": t.stale_reads[:3],
    }
    assert not a.lost, a.lost[:3]
    assert not a.duplicated, a.duplicated[:3]
    assert not a.gaps, a.gaps[:10]
    assert not outcome.follower.gaps, outcome.follower.gaps[:3]
    assert outcome.follower.changes == outcome.feed, "the follower saw exactly the feed"
    assert not a.diverged, a.diverged[:5]
    async with httpx.AsyncClient(timeout=5) as c:
        for replica in fleet.replicas:
            live = await c.get(f"{replica.base}/healthz")
            assert live.status_code == 200, f"{replica.name}: {live.text}"
    assert {r.name: r.errors()[:3] for r in fleet.replicas} == {r.name: [] for r in fleet.replicas}


async def crash_at_random(fleet: Cluster, events: list[str]) -> None:
    """Every few seconds SIGKILL a random replica HAProxy has in rotation and start it
    again at once, as a kubelet restarts a crashed container. Never the last one in
    rotation: that would be an outage by construction, not a test of the platform."""
    rng = random.Random()
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        await asyncio.sleep(CRASH_EVERY)
        states = await fleet.haproxy.states()
        up = [r for r in fleet.replicas if states[r.name].startswith("UP")]
        if len(up) < 2:
            continue
        victim = rng.choice(up)
        victim.kill()
        victim.start()
        events.append(f"SIGKILL {victim.name}")
    # HAProxy may still call a replica killed just now UP (two checks to fall): wait for
    # each new life's own readiness first, then for HAProxy to have them all.
    for replica in fleet.replicas:
        await asyncio.to_thread(replica.wait_ready)
    await fleet.haproxy.wait_all_in_rotation()


async def roll(fleet: Cluster, events: list[str]) -> None:
    """Restart every replica in turn as a rolling update does, until SECONDS have passed
    (one round at least): SIGTERM; HAProxy takes it out while it still serves (the
    drain); it exits 0; a new one starts; the next goes once HAProxy has it up."""
    end = time.monotonic() + SECONDS
    while True:
        for replica in fleet.replicas:
            began = time.monotonic()
            replica.signal(signal.SIGTERM)
            await fleet.haproxy.wait_out_of_rotation(replica, within=DRAIN_SECONDS)
            out = time.monotonic() - began
            assert await replica.exited() == 0, replica.log.read_text()[-3000:]
            exited = time.monotonic() - began
            replica.start()
            await fleet.haproxy.wait_in_rotation(replica)
            back = time.monotonic() - began
            events.append(f"{replica.name} out {out:.1f} s, gone {exited:.1f} s, up {back:.1f} s")
        if time.monotonic() >= end:
            return


async def cut_store_connections(fleet: Cluster, events: list[str]) -> None:
    """Every few seconds end every connection the replicas hold to PostgreSQL, in flight
    or idle, as a database restart or failover does."""
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        await asyncio.sleep(CUT_EVERY)
        events.append(f"ended {await fleet.terminate_connections()} connections")


async def test_replicas_killed_at_random_cost_no_client_a_failure(
    fleet: Cluster, pytestconfig: pytest.Config
) -> None:
    outcome = await under_load(fleet, "SIGKILL a random replica", crash_at_random)
    report(pytestconfig, "\n" + outcome.summary())
    assert len(outcome.events) >= 3, outcome.events
    await assert_no_client_noticed(fleet, outcome)


async def test_a_rolling_restart_costs_no_client_a_failure(
    fleet: Cluster, pytestconfig: pytest.Config
) -> None:
    outcome = await under_load(fleet, "rolling SIGTERM restart", roll)
    report(pytestconfig, "\n" + outcome.summary())
    assert len(outcome.events) >= len(fleet.replicas)
    await assert_no_client_noticed(fleet, outcome)


async def test_ended_store_connections_cost_no_client_a_failure(
    fleet: Cluster, pytestconfig: pytest.Config
) -> None:
    lives = [replica.lives for replica in fleet.replicas]
    outcome = await under_load(fleet, "PostgreSQL connections ended", cut_store_connections)
    report(pytestconfig, "\n" + outcome.summary())
    await assert_no_client_noticed(fleet, outcome)
    assert [replica.lives for replica in fleet.replicas] == lives, "no replica restarted"
