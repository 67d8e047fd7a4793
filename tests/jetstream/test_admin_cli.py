"""`entrepot admin streams add|list|end`, through the real command (no NATS needed).

An operator configures which feeds go to JetStream where the store is reachable:
each change audited with the OS user; a refusal (an unknown dataset, a name or
subject taken, a grant that is not live) is one line and exit status 1.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import httpx
import pytest

from entrepot.settings import Settings
from tests.e2e.test_admin_cli import entrepot
from tests.factories import make_dataset, unique

pytestmark = pytest.mark.slow


async def streams(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    url = settings.direct_url()
    assert url
    env = {"ENTREPOT_DATABASE_URL": url, "ENTREPOT_LOG_FORMAT": "console"}
    return await asyncio.to_thread(entrepot, env, "admin", "streams", *args)


def one(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    found: dict[str, Any] = json.loads(line)
    return found


async def test_an_operator_adds_lists_and_ends_a_stream(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    added = one(await streams(settings, "add", ds))
    assert added["dataset"] == ds
    assert added["audience"] == "full"
    assert added["stream"] == f"entrepot_{ds}"
    assert added["subject"] == f"entrepot.{ds}.changes"
    assert added["created_by"].startswith("system:cli:")

    listed = await streams(settings, "list")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert added in rows

    ended = one(await streams(settings, "end", added["id"]))
    assert ended["ended_reason"] == "ended_by_operator"
    assert ended["ended_at"] is not None
    audit = await client.get("/v1/audit", params={"limit": 1000})
    actions = [e["action"] for e in audit.json()["data"] if e["target"] == f"stream:{added['id']}"]
    assert sorted(actions) == ["stream.created", "stream.ended"]


async def test_refusals_are_one_line_and_exit_1(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    missing = await streams(settings, "add", unique("nope"))
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("entrepot: Dataset ")
    assert "Traceback" not in missing.stderr

    ds = (await make_dataset(client, primary_key="sku"))["name"]
    kept = one(await streams(settings, "add", ds, "--stream", f"s_{ds}"))
    taken = await streams(settings, "add", ds, "--stream", f"s_{ds}")
    assert taken.returncode == 1
    assert "is configured" in taken.stderr

    wildcard = await streams(settings, "add", ds, "--subject", "orders.*")
    assert wildcard.returncode == 1
    assert "no wildcards" in wildcard.stderr

    not_an_id = await streams(settings, "add", ds, "--grant", "x")
    assert not_an_id.returncode == 2  # a usage error, as Click reports them
    assert "not an id" in not_an_id.stderr
    # Ended, so that no publisher a later test starts on this database publishes it.
    one(await streams(settings, "end", kept["id"]))
