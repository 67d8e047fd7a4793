"""`entrepot sync` as a user runs it: a real server, real writers, a real agent process.

The acceptance criterion: killed with SIGKILL at random moments during a
stream of writes and restarted, the agent converges to exactly the source
state (ids, versions, data). Also: a PostgreSQL target, a clean SIGTERM
exit, and a re-snapshot when the agent's cursor has been compacted away (410).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from entrepot.changes import repository as changes_repo
from tests.e2e.test_serve import serving

pytestmark = pytest.mark.slow

ADMIN = "e2e-sync-admin-token-0123456789abcdef"  # 32+ characters, as serve requires
WRITERS = 8
WRITE_SECONDS = 12.0
KILLS = 5
THING_SCHEMA = {
    "type": "object",
    "properties": {
        "k": {"type": "string"},
        "n": {"type": "integer"},
        "s": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["k"],
}
NOTE_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string"}, "n": {"type": "integer"}},
}
Mirror = dict[str, tuple[int, Any]]


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, fresh_database: object
) -> Iterator[tuple[str, str]]:
    """A two-worker `entrepot serve`, and its database URL (for the compaction test)."""
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_LOG_LEVEL": "warning",
        "ENTREPOT_POOL_MAX_SIZE": "6",  # a light footprint on a shared PostgreSQL
    }
    log = tmp_path_factory.mktemp("sync-server") / "serve.log"
    with serving(env, "--workers", "2", log=log) as base:
        yield base, url


def api(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    )


async def new_datasets(http: httpx.AsyncClient) -> tuple[str, str]:
    """A dataset keyed by a field, and one with server-assigned ids."""
    org = f"org-{uuid.uuid4().hex[:8]}"
    assert (await http.post("/v1/orgs", json={"name": org, "title": "Org"})).status_code == 201
    names = (f"things-{uuid.uuid4().hex[:8]}", f"notes-{uuid.uuid4().hex[:8]}")
    for name, schema, pk in ((names[0], THING_SCHEMA, "k"), (names[1], NOTE_SCHEMA, None)):
        body = {"name": name, "org": org, "title": name, "schema": schema, "primary_key": pk}
        created = await http.post("/v1/datasets", json=body)
        assert created.status_code == 201, created.text
    return names


def thing(k: str) -> dict[str, Any]:
    return {
        "k": k,
        "n": random.randint(-(10**20), 10**20),  # exact beyond 64 bits, end to end
        "s": random.choice(
            ["", "é", "日本", 'quote " and \\ slash', "x" * 50, "line\u2028sep\x85nel\u2029"]
        ),
        "tags": random.sample(["a", "b", "c", "d"], random.randint(0, 3)),
    }


async def seed(http: httpx.AsyncClient, things: str, count: int) -> None:
    body = "\n".join(json.dumps(thing(f"k{i}")) for i in range(count))
    response = await http.post(
        f"/v1/datasets/{things}/import",
        params={"mode": "upsert"},
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text


async def write_stream(
    http: httpx.AsyncClient, things: str, notes: str, seconds: float, counts: dict[str, int]
) -> None:
    """One writer: creates, replaces, patches, deletes and small bulk upserts, mixed."""
    note_ids: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        roll = random.random()
        k = f"k{random.randint(0, 600)}"
        if roll < 0.30:
            r = await http.put(f"/v1/datasets/{things}/records/{k}", json=thing(k))
        elif roll < 0.45:
            r = await http.patch(
                f"/v1/datasets/{things}/records/{k}", json={"n": random.randint(0, 9)}
            )
        elif roll < 0.60:
            r = await http.delete(f"/v1/datasets/{things}/records/{k}")
        elif roll < 0.75:
            r = await http.post(f"/v1/datasets/{notes}/records", json={"text": k, "n": 1})
            if r.status_code == 201:
                note_ids.append(r.json()["id"])
        elif roll < 0.85 and note_ids:
            nid = random.choice(note_ids)
            r = await http.patch(f"/v1/datasets/{notes}/records/{nid}", json={"n": 2})
        elif roll < 0.95 and note_ids:
            nid = note_ids.pop(random.randrange(len(note_ids)))
            r = await http.delete(f"/v1/datasets/{notes}/records/{nid}")
        else:
            body = "\n".join(json.dumps(thing(f"k{random.randint(0, 600)}")) for _ in range(10))
            r = await http.post(
                f"/v1/datasets/{things}/import",
                params={"mode": "upsert"},
                content=body,
                headers={"Content-Type": "application/x-ndjson"},
            )
        assert r.status_code in (200, 201, 204, 404), r.text
        counts[str(r.status_code)] = counts.get(str(r.status_code), 0) + 1


async def source_state(http: httpx.AsyncClient, ds: str) -> tuple[Mirror, int]:
    """The dataset as the server holds it (read through the list endpoint, independent
    of the export the agent loads from), and the feed seq that state equals."""
    export = await http.get(f"/v1/datasets/{ds}/export", params={"envelope": "true"})
    assert export.status_code == 200, export.text
    exported: Mirror = {}
    for line in filter(None, export.text.split("\n")):
        item = json.loads(line)
        exported[item["id"]] = (item["version"], item["data"])
    rows: Mirror = {}
    params: dict[str, str | int] = {"limit": 1000}
    while True:
        page = await http.get(f"/v1/datasets/{ds}/records", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        rows.update({r["id"]: (r["version"], r["data"]) for r in body["data"]})
        if not body["next_cursor"]:
            break
        params["cursor"] = body["next_cursor"]
    assert exported == rows, "the enveloped export agrees with the records list"
    return rows, int(export.headers["x-entrepot-seq"])


def sqlite_state(path: Path, table: str) -> tuple[Mirror, int | None]:
    db = sqlite3.connect(path)
    try:
        rows = {
            rid: (version, json.loads(data))
            for rid, version, data in db.execute(f'SELECT id, version, data FROM "{table}"')
        }
        cp = db.execute(
            "SELECT seq FROM entrepot_sync_checkpoints WHERE table_name = ?", (table,)
        ).fetchone()
    finally:
        db.close()
    return rows, cp[0] if cp else None


def text_of(log: Path) -> str:
    return log.read_text()


def agent_env(base: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    env.update({"ENTREPOT_URL": base, "ENTREPOT_TOKEN": ADMIN})
    return env


async def start_agent(
    base: str, datasets: tuple[str, ...], to: str, log: Path, *extra: str
) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "entrepot",
            "sync",
            *datasets,
            "--to",
            to,
            *extra,
            env=agent_env(base),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )


async def catch_up(base: str, datasets: tuple[str, ...], to: str, log: Path) -> None:
    """`entrepot sync --once` until the feeds are drained; it must exit 0."""
    agent = await start_agent(base, datasets, to, log, "--once")
    code = await asyncio.wait_for(agent.wait(), timeout=120)
    assert code == 0, text_of(log)


async def test_sync_killed_at_random_moments_converges_to_the_exact_source_state(
    server: tuple[str, str], tmp_path: Path
) -> None:
    base, _ = server
    mirror = tmp_path / "mirror.db"
    to = f"sqlite:///{mirror}"
    log = tmp_path / "agent.log"
    async with api(base) as http:
        things, notes = await new_datasets(http)
        await seed(http, things, 5_000)  # so early kills can land mid-snapshot
        counts: dict[str, int] = {}
        writers = [
            asyncio.create_task(write_stream(http, things, notes, WRITE_SECONDS, counts))
            for _ in range(WRITERS)
        ]
        kills = 0
        agent: asyncio.subprocess.Process | None = None
        try:
            for _ in range(KILLS):
                agent = await start_agent(base, (things, notes), to, log, "--wait", "5")
                await asyncio.sleep(random.uniform(0.5, 2.0))
                agent.kill()  # SIGKILL: no cleanup of any kind
                await agent.wait()
                kills += 1
            agent = await start_agent(base, (things, notes), to, log, "--wait", "5")
            await asyncio.gather(*writers)
            agent.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(agent.wait(), timeout=30) == 0, text_of(log)
        finally:
            for task in writers:
                task.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
            if agent is not None and agent.returncode is None:
                agent.kill()
                await agent.wait()

        await catch_up(base, (things, notes), to, log)

        for ds in (things, notes):
            expected, head = await source_state(http, ds)
            rows, checkpoint = sqlite_state(mirror, ds)
            assert checkpoint == head
            assert rows.keys() == expected.keys()
            assert rows == expected
        written = sum(counts.values())
    text = text_of(log)
    assert "gap" not in text, text
    assert kills == KILLS
    assert written > 1_000, counts
    print(f"\n{written} writes by {WRITERS} writers, {kills} SIGKILLs: mirror exact; {counts}")


async def test_sync_into_postgresql_follows_and_stops_cleanly_on_sigterm(
    server: tuple[str, str], tmp_path: Path, fresh_database: Any
) -> None:
    base, _ = server
    target_url: str = await fresh_database()
    log = tmp_path / "agent.log"
    async with api(base) as http:
        things, notes = await new_datasets(http)
        await seed(http, things, 500)
        agent = await start_agent(
            base, (things, notes), target_url, log, "--table-prefix", "src_", "--wait", "2"
        )
        counts: dict[str, int] = {}
        await asyncio.gather(*(write_stream(http, things, notes, 3.0, counts) for _ in range(4)))
        heads = {ds: (await source_state(http, ds))[1] for ds in (things, notes)}
        target = await asyncpg.connect(target_url)
        try:
            deadline = time.monotonic() + 30
            while True:  # the running agent catches up on its own, through long polls
                rows = await target.fetch("SELECT table_name, seq FROM entrepot_sync_checkpoints")
                seqs = {r["table_name"].removeprefix("src_"): r["seq"] for r in rows}
                if seqs == heads or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert seqs == heads, text_of(log)
            agent.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(agent.wait(), timeout=30) == 0, text_of(log)
            for ds in (things, notes):
                expected, head = await source_state(http, ds)
                rows = await target.fetch(f'SELECT id, version, data::text FROM "src_{ds}"')
                mirrored = {r["id"]: (r["version"], json.loads(r["data"])) for r in rows}
                assert mirrored == expected
                seq = await target.fetchval(
                    "SELECT seq FROM entrepot_sync_checkpoints WHERE table_name = $1", "src_" + ds
                )
                assert seq == head
        finally:
            await target.close()


async def test_a_compacted_cursor_makes_the_agent_re_snapshot(
    server: tuple[str, str], tmp_path: Path
) -> None:
    base, server_db = server
    mirror = tmp_path / "mirror.db"
    to = f"sqlite:///{mirror}"
    log = tmp_path / "agent.log"
    async with api(base) as http:
        things, _ = await new_datasets(http)
        await seed(http, things, 50)
        await catch_up(base, (things,), to, log)
        _, first_checkpoint = sqlite_state(mirror, things)
        await seed(http, things, 80)  # upserts k0..k49 again, creates k50..k79
        for k in ("k1", "k2", "k60"):
            assert (await http.delete(f"/v1/datasets/{things}/records/{k}")).status_code == 204
        conn = await asyncpg.connect(server_db)
        try:  # what compaction does, past the agent's cursor
            dataset_id = await conn.fetchval("SELECT id FROM datasets WHERE name = $1", things)
            await changes_repo.sequence(conn, dataset_id)  # numbered, as readers would
            await conn.execute(
                """
                WITH ds AS (SELECT id FROM datasets WHERE name = $1),
                     moved AS (UPDATE feed_heads SET min_seq = last_seq - 1
                               WHERE dataset_id = (SELECT id FROM ds) RETURNING min_seq)
                DELETE FROM changes WHERE dataset_id = (SELECT id FROM ds)
                  AND seq <= (SELECT min_seq FROM moved)
                """,
                things,
            )
        finally:
            await conn.close()
        gone = await http.get(f"/v1/datasets/{things}/changes", params={"after": first_checkpoint})
        assert gone.status_code == 410

        await catch_up(base, (things,), to, log)

        expected, head = await source_state(http, things)
        rows, checkpoint = sqlite_state(mirror, things)
        assert rows == expected
        assert checkpoint == head
        assert len(rows) == 77
    assert "compacted away" in text_of(log)
    assert text_of(log).count("snapshot of") == 2


async def recreate(http: httpx.AsyncClient, name: str, keys: list[str]) -> None:
    """Delete ``name`` and create a new dataset under the same name holding ``keys``."""
    old = await http.get(f"/v1/datasets/{name}")
    assert old.status_code == 200, old.text
    assert (await http.delete(f"/v1/datasets/{name}")).status_code == 204
    body = {
        "name": name,
        "org": old.json()["org"],
        "title": name,
        "schema": THING_SCHEMA,
        "primary_key": "k",
    }
    assert (await http.post("/v1/datasets", json=body)).status_code == 201
    for k in keys:
        created = await http.post(f"/v1/datasets/{name}/records", json=thing(k))
        assert created.status_code == 201, created.text


async def test_a_dataset_created_again_under_its_name_is_resnapshotted_not_diverged(
    server: tuple[str, str], tmp_path: Path
) -> None:
    """The old life's checkpoint (seq 5) is past the new life's head (seq 1): the server
    answers 410, and the agent reloads the dataset instead of reporting a stale mirror."""
    base, _ = server
    mirror = tmp_path / "mirror.db"
    to = f"sqlite:///{mirror}"
    log = tmp_path / "agent.log"
    async with api(base) as http:
        things, notes = await new_datasets(http)
        for i in range(5):
            assert (
                await http.post(f"/v1/datasets/{things}/records", json=thing(f"old{i}"))
            ).status_code == 201
        await catch_up(base, (things,), to, log)
        assert len(sqlite_state(mirror, things)[0]) == 5

        await recreate(http, things, ["new0"])
        await catch_up(base, (things,), to, log)
        expected, head = await source_state(http, things)
        assert sqlite_state(mirror, things) == (expected, head)
        assert list(expected) == ["new0"]
        assert "re-snapshotting" in text_of(log)

        # Told not to resnapshot, the agent stops that dataset with an error and a
        # non-zero exit, and still mirrors the other dataset.
        before = sqlite_state(mirror, things)
        await recreate(http, things, ["newer0", "newer1"])
        note = await http.post(f"/v1/datasets/{notes}/records", json={"text": "hello", "n": 1})
        assert note.status_code == 201, note.text
        strict_log = tmp_path / "strict.log"
        agent = await start_agent(
            base, (things, notes), to, strict_log, "--once", "--no-resnapshot"
        )
        assert await asyncio.wait_for(agent.wait(), timeout=120) == 1, text_of(strict_log)
        assert "--no-resnapshot" in text_of(strict_log)
        assert "incarnation" in text_of(strict_log)
        assert sqlite_state(mirror, things) == before  # left alone, and reported as stale
        notes_expected, notes_head = await source_state(http, notes)
        assert sqlite_state(mirror, notes) == (notes_expected, notes_head)

        # A dataset that is gone does not stop the others either.
        assert (await http.delete(f"/v1/datasets/{things}")).status_code == 204
        more = await http.post(f"/v1/datasets/{notes}/records", json={"text": "again", "n": 2})
        assert more.status_code == 201, more.text
        gone_log = tmp_path / "gone.log"
        agent = await start_agent(base, (notes, things), to, gone_log, "--once")
        assert await asyncio.wait_for(agent.wait(), timeout=120) == 1, text_of(gone_log)
        assert things in text_of(gone_log)
        notes_expected, notes_head = await source_state(http, notes)
        assert sqlite_state(mirror, notes) == (notes_expected, notes_head)


async def test_a_kill_in_the_middle_of_the_snapshot_leaves_no_partial_mirror(
    server: tuple[str, str], tmp_path: Path
) -> None:
    base, _ = server
    mirror = tmp_path / "mirror.db"
    to = f"sqlite:///{mirror}"
    log = tmp_path / "agent.log"
    async with api(base) as http:
        things, _ = await new_datasets(http)
        await seed(http, things, 30_000)
        agent = await start_agent(base, (things,), to, log)
        try:
            deadline = time.monotonic() + 30
            while "snapshot started" not in text_of(log):
                assert time.monotonic() < deadline, text_of(log)
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)  # well into the stream of 30,000 records
            agent.kill()
            await agent.wait()
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
        assert "loaded" not in text_of(log), "the snapshot finished before the kill"
        assert sqlite_state(mirror, things) == ({}, None)

        await catch_up(base, (things,), to, log)
        expected, head = await source_state(http, things)
        assert sqlite_state(mirror, things) == (expected, head)
        assert len(expected) == 30_000
