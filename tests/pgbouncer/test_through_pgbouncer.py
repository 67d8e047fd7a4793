"""The platform through a real PgBouncer in transaction mode (bouncer.py): the core suites
pass with the session's pools behind it, and two `entrepot serve` replicas behind it wake
each other's long polls (NOTIFY through the pooler, LISTEN on the direct URL)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import pooled_timeouts
from tests.e2e.test_serve import serving
from tests.pgbouncer.bouncer import POOL_SIZE, Bouncer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The records, feed and access suites, run on the session app through PgBouncer.
SUITES = (
    "tests/integration/test_records_crud.py",
    "tests/integration/test_records_list.py",
    "tests/integration/test_idempotency.py",
    "tests/integration/test_bulk_import.py",
    "tests/integration/test_export.py",
    "tests/integration/test_change_feed.py",
    "tests/integration/test_access_requests.py",
)
SUITES_SECONDS = 1200
ADMIN = "pgbouncer-admin-token-" + "0" * 32
WAKE_BOUND = 2.0  # a long poll of 10 s answered this soon after the write: woken
TAIL = 60


@pytest.mark.timeout(SUITES_SECONDS + 60)
def test_the_core_suites_pass_through_pgbouncer(
    bouncer: Bouncer, pg_admin_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "ENTREPOT_TEST_POSTGRES_URL": pg_admin_url,  # the server this PgBouncer fronts
        "ENTREPOT_TEST_PGBOUNCER": bouncer.address,
    }
    log = tmp_path / "suites.log"
    with log.open("wb") as out:
        finished = subprocess.run(
            [sys.executable, "-m", "pytest", *SUITES, "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=SUITES_SECONDS,
            check=False,
        )
    text = log.read_text()
    tail = "\n".join(text.splitlines()[-TAIL:])
    assert finished.returncode == 0, f"the suites failed through PgBouncer:\n{tail}"
    assert re.search(r"\d+ passed", tail), tail
    logins = re.findall(r"login attempt: db=(entrepot_test_\w+)", bouncer.log.read_text())
    assert logins, "the session's pools never logged in through PgBouncer"


async def _prepare_database(url: str) -> None:
    """The timeouts a pooler cannot carry as startup parameters, on the database."""
    conn = await asyncpg.connect(url)
    try:
        database = await conn.fetchval("SELECT current_database()")
        for name, value in pooled_timeouts().items():
            await conn.execute(f'ALTER DATABASE "{database}" SET {name} = {value}')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def replicas(
    bouncer: Bouncer, fresh_database: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, str, Path]]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    asyncio.run(_prepare_database(url))
    env = {
        "ENTREPOT_DATABASE_URL": bouncer.url(url),
        "ENTREPOT_DIRECT_DATABASE_URL": url,
        "ENTREPOT_POOLER": "transaction",
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_POOL_MAX_SIZE": "6",
    }
    logs = tmp_path_factory.mktemp("pgbouncer-replicas")
    with ExitStack() as stack:
        a = stack.enter_context(serving(env, log=logs / "a.log"))
        b = stack.enter_context(serving(env, log=logs / "b.log"))
        yield a, b, url, logs / "a.log"


def _client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    )


async def test_replicas_through_pgbouncer_wake_each_other(
    replicas: tuple[str, str, str, Path],
) -> None:
    base_a, base_b, _, _ = replicas
    async with _client(base_a) as a, _client(base_b) as b:
        org = f"org-{time.monotonic_ns()}"
        assert (await a.post("/v1/orgs", json={"name": org, "title": "O"})).status_code == 201
        ds = f"ds-{time.monotonic_ns()}"
        schema = {"type": "object", "properties": {"k": {"type": "string"}}, "required": ["k"]}
        created = await a.post(
            "/v1/datasets",
            json={"name": ds, "org": org, "title": "T", "schema": schema, "primary_key": "k"},
        )
        assert created.status_code == 201, created.text
        after = 0
        for trial in range(3):
            poll = asyncio.create_task(
                b.get(f"/v1/datasets/{ds}/changes", params={"after": after, "wait": 10})
            )
            await asyncio.sleep(0.2)  # parked on replica B
            assert not poll.done()
            written = await a.put(f"/v1/datasets/{ds}/records/k{trial}", json={"k": f"k{trial}"})
            acked = time.monotonic()
            assert written.status_code == 201, written.text
            page = (await poll).json()
            assert time.monotonic() - acked < WAKE_BOUND, "B's listener was not woken"
            assert [c["id"] for c in page["changes"]] == [f"k{trial}"]
            after = page["last_seq"]
            read = await b.get(f"/v1/datasets/{ds}/records/k{trial}")
            assert read.status_code == 200, read.text


async def test_only_the_listeners_reach_the_server_directly(
    bouncer: Bouncer, replicas: tuple[str, str, str, Path]
) -> None:
    _, _, url, log = replicas
    conn = await asyncpg.connect(url)
    try:
        sessions = await conn.fetch(
            "SELECT application_name, client_port FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        timeout = await conn.fetchval("SHOW statement_timeout")
    finally:
        await conn.close()
    pooled = bouncer.server_ports()
    direct = Counter(s["application_name"] for s in sessions if s["client_port"] not in pooled)
    assert direct == {f"entrepot-listen-{n}": 2 for n in ("changes", "invalidation", "webhooks")}
    assert len(sessions) - direct.total() <= POOL_SIZE  # PgBouncer's, whatever the clients
    assert timeout == "30s"  # the database's setting, as docs/operations.md says to set it
    assert "pooled_timeouts_differ" not in log.read_text()


def test_behind_the_pooler_a_missing_role_timeout_is_named_at_start(
    bouncer: Bouncer, fresh_database: object
) -> None:
    """A database without the timeouts: the check warns, naming the statements to run."""
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    env = {
        **clean,
        "ENTREPOT_DATABASE_URL": bouncer.url(url),
        "ENTREPOT_DIRECT_DATABASE_URL": url,
        "ENTREPOT_POOLER": "transaction",
        "ENTREPOT_LOG_FORMAT": "json",
    }
    shown = subprocess.run(
        [sys.executable, "-m", "entrepot", "budget", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1] == (
        "per replica, 1 worker (ENTREPOT_WORKERS): 3 to PostgreSQL itself "
        "(ENTREPOT_DIRECT_DATABASE_URL), 14 to the pooler (ENTREPOT_DATABASE_URL)"
    )
    assert "connection_check_pooler" in shown.stderr
    assert "pooled_timeouts_differ" in shown.stderr
    assert "ALTER ROLE <role> SET statement_timeout = 30000" in shown.stderr
