"""`entrepot serve` refuses, in one line, a connection budget PostgreSQL cannot hold, and
starts when it fits. A role with a CONNECTION LIMIT stands for a small server: the check
reads it as it reads max_connections, and nothing of the shared server changes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from tests.e2e.test_serve import serving

pytestmark = pytest.mark.slow

# 4 request + 1 bulk + 3 listeners: one worker's budget of 8.
SMALL = {
    "ENTREPOT_POOL_MAX_SIZE": "4",
    "ENTREPOT_POOL_MIN_SIZE": "1",
    "ENTREPOT_BULK_POOL_SIZE": "1",
}
BUDGET = 8


@dataclass(frozen=True, slots=True)
class Limited:
    url: str  # as the role, on a database it owns
    role: str

    async def limit(self, admin_url: str, connections: int) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'ALTER ROLE "{self.role}" CONNECTION LIMIT {connections}')
        finally:
            await conn.close()


@pytest.fixture
def limited(pg_admin_url: str) -> Iterator[Limited]:
    """A role of its own, owning a database of its own; both dropped afterwards."""
    name = f"entrepot_limited_{uuid.uuid4().hex[:10]}"

    async def run(*statements: str) -> None:
        conn = await asyncpg.connect(pg_admin_url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE ROLE "{name}" LOGIN', f'CREATE DATABASE "{name}" OWNER "{name}"'))
    admin = urlsplit(pg_admin_url)
    where = admin.netloc.rpartition("@")[2]
    url = urlunsplit(admin._replace(netloc=f"{name}@{where}", path=f"/{name}"))
    try:
        yield Limited(url, name)
    finally:
        asyncio.run(
            run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{name}"')
        )


def serve_until_it_exits(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    return subprocess.run(
        [sys.executable, "-m", "entrepot", "serve", "--port", "1"],
        env={**clean, "ENTREPOT_LOG_LEVEL": "warning", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_refuses_a_budget_over_the_role_s_limit(limited: Limited, pg_admin_url: str) -> None:
    asyncio.run(limited.limit(pg_admin_url, BUDGET - 1))
    ended = serve_until_it_exits({"ENTREPOT_DATABASE_URL": limited.url, **SMALL})
    assert ended.returncode == 1, ended.stderr
    lines = ended.stderr.strip().splitlines()
    assert len(lines) == 1, ended.stderr  # one line, no traceback
    [line] = lines
    assert line.startswith(
        f"entrepot: the connection budget does not fit: this replica may open {BUDGET} connections"
    ), line
    assert f'role "{limited.role}" has {BUDGET - 1} free' in line
    assert "ENTREPOT_POOL_MAX_SIZE" in line
    assert "ENTREPOT_CONNECTION_CHECK=false" in line


def test_serve_refuses_a_pool_larger_than_the_server(fresh_database: object) -> None:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    ended = serve_until_it_exits({"ENTREPOT_DATABASE_URL": url, "ENTREPOT_POOL_MAX_SIZE": "5000"})
    assert ended.returncode == 1, ended.stderr
    assert "may open 5007 connections" in ended.stderr
    assert "but the server has" in ended.stderr
    assert "max_connections" in ended.stderr


def test_serve_starts_when_the_budget_just_fits(
    limited: Limited, pg_admin_url: str, tmp_path: Path
) -> None:
    asyncio.run(limited.limit(pg_admin_url, BUDGET))
    env = {"ENTREPOT_DATABASE_URL": limited.url, "ENTREPOT_LOG_FORMAT": "console", **SMALL}
    with serving(env, log=tmp_path / "serve.log") as base:
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    assert "connection_budget" in (tmp_path / "serve.log").read_text()


def test_the_check_can_be_turned_off(limited: Limited, pg_admin_url: str, tmp_path: Path) -> None:
    asyncio.run(limited.limit(pg_admin_url, BUDGET - 1))
    env = {
        "ENTREPOT_DATABASE_URL": limited.url,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_CONNECTION_CHECK": "false",
        **SMALL,
    }
    with serving(env, log=tmp_path / "serve.log") as base:  # it opens fewer than its budget
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    assert "connection_check_skipped" in (tmp_path / "serve.log").read_text()


def test_entrepot_budget_prints_the_budget_and_checks_it(
    limited: Limited, pg_admin_url: str
) -> None:
    asyncio.run(limited.limit(pg_admin_url, 20))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "entrepot",
            "budget",
            "--workers",
            "2",
            "--replicas",
            "3",
            "--check",
        ],
        env={
            **clean,
            "ENTREPOT_DATABASE_URL": limited.url,
            "ENTREPOT_LOG_LEVEL": "warning",
            **SMALL,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "per worker: 8 = 4 request pool (ENTREPOT_POOL_MAX_SIZE) + 1 bulk pool "
        "(ENTREPOT_BULK_POOL_SIZE) + 3 listeners (changes, invalidation, webhooks)",
        "per replica, 2 workers (ENTREPOT_WORKERS): 16",
        "3 replicas: 48",
        f'fits: 16 of the 20 free on role "{limited.role}" (20 allowed, 0 in use)',
    ]
