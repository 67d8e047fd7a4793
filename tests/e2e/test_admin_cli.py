"""`entrepot admin create-key` and the bootstrap token's rules, through the real command.

A lost platform-admin key is replaced from the command line where the store
is reachable; ENTREPOT_BOOTSTRAP_TOKEN only ever acts on the first start, and
later starts say so.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from entrepot.app import create_app
from entrepot.auth.keys import digest
from entrepot.settings import Settings
from entrepot.store.migrate import migrate
from tests.e2e.test_serve import serving

pytestmark = pytest.mark.slow

Factory = Callable[[], Awaitable[str]]


def entrepot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def create_key(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"ENTREPOT_DATABASE_URL": url, "ENTREPOT_LOG_FORMAT": "console"}
    return await asyncio.to_thread(entrepot, env, "admin", "create-key", *args)


async def test_create_key_prints_a_platform_admin_key_once_and_audits_it(
    fresh_database: Factory,
) -> None:
    url = await fresh_database()
    await migrate(url)
    done = await create_key(url, "--name", "recovery")
    assert done.returncode == 0, done.stderr
    [key] = done.stdout.splitlines()  # only the key: KEY=$(entrepot admin create-key) works
    assert key.startswith("ent_")
    assert key not in done.stderr
    assert "platform-admin" in done.stderr

    application = create_app(Settings(database_url=url, log_level="warning"))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"},
        ) as admin,
    ):
        plan = {"name": "recovered", "rate_per_second": 5, "burst": 10}
        created = await admin.post("/v1/plans", json=plan)  # platform admins only
        assert created.status_code == 201, created.text
        audit = await admin.get("/v1/audit", params={"action": "admin_key.created"})
        assert audit.status_code == 200, audit.text

    conn = await asyncpg.connect(url)
    try:
        stored = await conn.fetchrow(
            "SELECT id, name, is_admin, scopes FROM api_keys WHERE digest = $1", digest(key)
        )
        rows = await conn.fetch("SELECT * FROM audit_log WHERE action = 'admin_key.created'")
    finally:
        await conn.close()
    assert stored is not None
    assert (stored["name"], stored["is_admin"], stored["scopes"]) == ("recovery", True, ["admin"])
    [row] = rows
    assert row["actor"] == "system:cli"
    assert row["target"] == f"key:{stored['id']}"
    assert row["outcome"] == "success"
    assert json.loads(row["details"]) == {
        "key_id": str(stored["id"]),
        "name": "recovery",
        "os_user": getpass.getuser(),
    }
    assert key not in str(dict(row))
    assert key[4:] not in str(dict(row))
    [listed] = audit.json()["data"]
    assert listed["target"] == row["target"]


async def test_create_key_migrates_an_empty_store_first(fresh_database: Factory) -> None:
    url = await fresh_database()
    first, second = await create_key(url), await create_key(url)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    keys = {first.stdout.strip(), second.stdout.strip()}
    assert len(keys) == 2, "every run makes a new key"
    conn = await asyncpg.connect(url)
    try:
        admins = await conn.fetchval("SELECT count(*) FROM api_keys WHERE is_admin")
        bootstrapped = await conn.fetchval("SELECT count(*) FROM platform_state")
    finally:
        await conn.close()
    assert admins == 2
    assert bootstrapped == 0, "the first serve still bootstraps (and its token still applies)"


async def test_create_key_refuses_an_empty_name(fresh_database: Factory) -> None:
    url = await fresh_database()
    done = await create_key(url, "--name", "   ")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "--name" in done.stderr


def test_a_second_start_says_the_bootstrap_token_is_ignored(
    tmp_path: Path, fresh_database: Factory
) -> None:
    url = asyncio.run(fresh_database())
    token = "e2e-bootstrap-" + uuid.uuid4().hex
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": token,
        "ENTREPOT_LOG_FORMAT": "json",
    }
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    with serving(env, log=first) as base:
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/v1/datasets", headers=auth).status_code == 200
    assert "bootstrap_token_ignored" not in first.read_text()

    with serving(env, log=second):
        pass
    text = second.read_text()
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    [ignored] = [e for e in events if e.get("event") == "bootstrap_token_ignored"]
    assert ignored["level"] == "warning"
    assert "already bootstrapped" in ignored["detail"]
    assert "ENTREPOT_BOOTSTRAP_TOKEN is ignored" in ignored["detail"]
    assert "entrepot admin create-key" in ignored["detail"]
    assert token not in text
