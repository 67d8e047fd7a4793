"""`entrepot sync` as a user runs it: a real server, real writers, a real agent process.

The acceptance criterion: killed with SIGKILL at random moments during a
stream of writes and restarted, the agent converges to exactly the source
state (ids, versions, data; in MySQL, typed columns too). Also: following and
a clean SIGTERM exit, and a re-snapshot when the agent's cursor has been
compacted away or the dataset created again (410). Each test runs on every
target it names (`mirror`, tests/mirrors.py: SQLite, PostgreSQL, MariaDB).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from entrepot.changes import repository as changes_repo
from tests.e2e.test_serve import serving
from tests.mirrors import Mirror
from tests.waiting import until

pytestmark = pytest.mark.slow

ADMIN = "e2e-sync-admin-token-0123456789abcdef"  # 32+ characters, as serve requires
WRITERS = 8
WRITE_SECONDS = 12.0
KILLS = 5
MIN_WRITES = 1_000
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
MirrorRows = dict[str, tuple[int, Any]]


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
    http: httpx.AsyncClient,
    things: str,
    notes: str,
    seconds: float,
    counts: dict[str, int],
    at_least: int = 0,
) -> None:
    """One writer: creates, replaces, patches, deletes and small bulk upserts, mixed; for
    ``seconds``, and on until the writers together have made ``at_least`` writes (a
    loaded machine writes slower), within 6 times ``seconds``."""
    note_ids: list[str] = []
    started = time.monotonic()
    while time.monotonic() < started + seconds or (
        sum(counts.values()) < at_least and time.monotonic() < started + 6 * seconds
    ):
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


async def source_state(http: httpx.AsyncClient, ds: str) -> tuple[MirrorRows, int]:
    """The dataset as the server holds it (read through the list endpoint, independent
    of the export the agent loads from), and the feed seq that state equals."""
    export = await http.get(f"/v1/datasets/{ds}/export", params={"envelope": "true"})
    assert export.status_code == 200, export.text
    exported: MirrorRows = {}
    for line in filter(None, export.text.split("\n")):
        item = json.loads(line)
        exported[item["id"]] = (item["version"], item["data"])
    rows: MirrorRows = {}
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


def assert_typed(mirror: Mirror, table: str, expected: MirrorRows, schema: dict[str, Any]) -> None:
    """A MySQL mirror's typed columns hold each record's values, checked without the
    agent's own conversion: a property of one scalar type holds its value (integers
    exactly), any other holds its JSON text."""
    if mirror.kind != "mysql":
        return
    scalar = {
        name
        for name, sub in schema["properties"].items()
        if sub.get("type") in ("string", "integer", "number", "boolean")
    }
    typed = mirror.typed(table)
    assert typed.keys() == expected.keys()
    for rid, (version, data) in expected.items():
        row = typed[rid]
        assert row.pop("version") == version
        assert row.keys() == schema["properties"].keys()
        for column, value in row.items():
            given = data.get(column)
            if isinstance(value, Decimal):
                value = int(value)
            elif column not in scalar and value is not None:
                value = json.loads(value)
            assert value == given, (rid, column)


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
    server: tuple[str, str], tmp_path: Path, mirror: Mirror
) -> None:
    base, _ = server
    to = mirror.to
    log = tmp_path / "agent.log"
    async with api(base) as http:
        things, notes = await new_datasets(http)
        await seed(http, things, 5_000)  # so early kills can land mid-snapshot
        counts: dict[str, int] = {}
        writers = [
            asyncio.create_task(
                write_stream(http, things, notes, WRITE_SECONDS, counts, at_least=MIN_WRITES)
            )
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
            heads = {ds: (await source_state(http, ds))[1] for ds in (things, notes)}

            async def caught_up() -> bool:  # by itself: so it is running when told to stop
                return {ds: (await mirror.state(ds))[1] for ds in heads} == heads

            await until(caught_up, f"the last agent reaches the heads {heads}")
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
            rows, checkpoint = await mirror.state(ds)
            assert checkpoint == head
            assert rows.keys() == expected.keys()
            assert rows == expected
            assert_typed(mirror, ds, expected, THING_SCHEMA if ds == things else NOTE_SCHEMA)
        written = sum(counts.values())
    text = text_of(log)
    assert "gap" not in text, text
    assert kills == KILLS
    assert written >= MIN_WRITES, counts
    print(f"\n{written} writes by {WRITERS} writers, {kills} SIGKILLs: mirror exact; {counts}")


@pytest.mark.parametrize("mirror", ["postgresql", "mysql"], indirect=True)
async def test_sync_into_a_database_follows_and_stops_cleanly_on_sigterm(
    server: tuple[str, str], tmp_path: Path, mirror: Mirror
) -> None:
    base, _ = server
    log = tmp_path / "agent.log"
    async with api(base) as http:
        things, notes = await new_datasets(http)
        await seed(http, things, 500)
        agent = await start_agent(
            base, (things, notes), mirror.to, log, "--table-prefix", "src_", "--wait", "2"
        )
        counts: dict[str, int] = {}
        await asyncio.gather(*(write_stream(http, things, notes, 3.0, counts) for _ in range(4)))
        heads = {ds: (await source_state(http, ds))[1] for ds in (things, notes)}

        async def caught_up() -> bool:  # the running agent, on its own, through long polls
            seqs = {ds: (await mirror.state("src_" + ds))[1] for ds in heads}
            return seqs == heads

        await until(caught_up, f"the agent reaches the heads {heads}")
        agent.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(agent.wait(), timeout=30) == 0, text_of(log)
        for ds in (things, notes):
            expected, head = await source_state(http, ds)
            assert await mirror.state("src_" + ds) == (expected, head)
            schema = THING_SCHEMA if ds == things else NOTE_SCHEMA
            assert_typed(mirror, "src_" + ds, expected, schema)


async def test_a_compacted_cursor_makes_the_agent_re_snapshot(
    server: tuple[str, str], tmp_path: Path, mirror: Mirror
) -> None:
    base, server_db = server
    to = mirror.to
    log = tmp_path / "agent.log"
    async with api(base) as http:
        things, _ = await new_datasets(http)
        await seed(http, things, 50)
        await catch_up(base, (things,), to, log)
        _, first_checkpoint = await mirror.state(things)
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
        rows, checkpoint = await mirror.state(things)
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
    server: tuple[str, str], tmp_path: Path, mirror: Mirror
) -> None:
    """The old life's checkpoint (seq 5) is past the new life's head (seq 1): the server
    answers 410, and the agent reloads the dataset instead of reporting a stale mirror."""
    base, _ = server
    to = mirror.to
    log = tmp_path / "agent.log"
    async with api(base) as http:
        things, notes = await new_datasets(http)
        for i in range(5):
            assert (
                await http.post(f"/v1/datasets/{things}/records", json=thing(f"old{i}"))
            ).status_code == 201
        await catch_up(base, (things,), to, log)
        assert len((await mirror.state(things))[0]) == 5

        await recreate(http, things, ["new0"])
        await catch_up(base, (things,), to, log)
        expected, head = await source_state(http, things)
        assert await mirror.state(things) == (expected, head)
        assert list(expected) == ["new0"]
        assert "re-snapshotting" in text_of(log)

        # Told not to resnapshot, the agent stops that dataset with an error and a
        # non-zero exit, and still mirrors the other dataset.
        before = await mirror.state(things)
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
        assert await mirror.state(things) == before  # left alone, and reported as stale
        notes_expected, notes_head = await source_state(http, notes)
        assert await mirror.state(notes) == (notes_expected, notes_head)

        # A dataset that is gone does not stop the others either.
        assert (await http.delete(f"/v1/datasets/{things}")).status_code == 204
        more = await http.post(f"/v1/datasets/{notes}/records", json={"text": "again", "n": 2})
        assert more.status_code == 201, more.text
        gone_log = tmp_path / "gone.log"
        agent = await start_agent(base, (notes, things), to, gone_log, "--once")
        assert await asyncio.wait_for(agent.wait(), timeout=120) == 1, text_of(gone_log)
        assert things in text_of(gone_log)
        notes_expected, notes_head = await source_state(http, notes)
        assert await mirror.state(notes) == (notes_expected, notes_head)


async def test_a_kill_in_the_middle_of_the_snapshot_leaves_no_partial_mirror(
    server: tuple[str, str], tmp_path: Path, mirror: Mirror
) -> None:
    base, _ = server
    to = mirror.to
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
        assert await mirror.state(things) == ({}, None)

        await catch_up(base, (things,), to, log)
        expected, head = await source_state(http, things)
        assert await mirror.state(things) == (expected, head)
        assert len(expected) == 30_000


@pytest.mark.parametrize("mirror", ["mysql"], indirect=True)
async def test_a_schema_mysql_cannot_hold_stops_that_dataset_before_anything_is_written(
    server: tuple[str, str], tmp_path: Path, mirror: Mirror
) -> None:
    base, _ = server
    log = tmp_path / "agent.log"
    async with api(base) as http:
        things, notes = await new_datasets(http)
        org = (await http.get(f"/v1/datasets/{things}")).json()["org"]
        clashing = f"clashing-{uuid.uuid4().hex[:8]}"
        schema = {
            "type": "object",
            "properties": {"Colour": {"type": "string"}, "colour": {"type": "string"}},
        }
        body = {"name": clashing, "org": org, "title": "Clash", "schema": schema}
        assert (await http.post("/v1/datasets", json=body)).status_code == 201
        created = await http.post(f"/v1/datasets/{clashing}/records", json={"Colour": "red"})
        assert created.status_code == 201, created.text
        note = await http.post(f"/v1/datasets/{notes}/records", json={"text": "hi", "n": 1})
        assert note.status_code == 201, note.text

        agent = await start_agent(base, (clashing, notes), mirror.to, log, "--once")
        assert await asyncio.wait_for(agent.wait(), timeout=120) == 1, text_of(log)
        said = text_of(log)
        assert f"{clashing}: stopped: properties 'Colour' and 'colour' would be columns" in said
        assert "which MySQL takes for one (column names ignore case)" in said
        assert f"entrepot: sync stopped: {clashing}:" in said
        assert mirror.columns(clashing) == {}, "no table was made for it"
        assert await mirror.state(clashing) == ({}, None)
        assert await mirror.state(notes) == await source_state(http, notes)  # the other went on


@pytest.mark.parametrize("mirror", ["mysql"], indirect=True)
async def test_a_schema_change_while_following_remakes_the_table_with_its_new_columns(
    server: tuple[str, str], tmp_path: Path, mirror: Mirror
) -> None:
    """An added property is found by the agent's periodic look at the schema; a widened
    type by the first record that no longer fits its column. Either way the table is
    reloaded with the new columns, and the mirror ends exact."""
    base, _ = server
    log = tmp_path / "agent.log"
    async with api(base) as http:
        things, _ = await new_datasets(http)
        await seed(http, things, 50)
        agent = await start_agent(base, (things,), mirror.to, log, "--wait", "2")
        try:

            async def loaded() -> bool:
                return (await mirror.state(things))[1] == (await source_state(http, things))[1]

            await until(loaded, "the first snapshot")
            properties: dict[str, Any] = {
                **THING_SCHEMA["properties"],  # type: ignore[dict-item]
                "colour": {"type": "string", "maxLength": 10},
            }
            wider = {**THING_SCHEMA, "properties": properties}
            changed = await http.patch(f"/v1/datasets/{things}", json={"schema": wider})
            assert changed.status_code == 200, changed.text
            red = {**thing("k1"), "colour": "red"}
            assert (await http.put(f"/v1/datasets/{things}/records/k1", json=red)).is_success

            def coloured() -> bool:
                return mirror.columns(things).get("colour") == "varchar(10)" and (
                    mirror.typed(things).get("k1", {}).get("colour") == "red"
                )

            await until(lambda: asyncio.to_thread(coloured), "a colour column", within=90)

            properties["s"] = {"type": ["string", "integer"]}
            changed = await http.patch(f"/v1/datasets/{things}", json={"schema": wider})
            assert changed.status_code == 200, changed.text
            numbered = {**thing("k2"), "s": 5}
            assert (await http.put(f"/v1/datasets/{things}/records/k2", json=numbered)).is_success

            async def caught_up() -> bool:
                expected = await source_state(http, things)
                return await mirror.state(things) == expected

            await until(caught_up, "the mirror after the type change")
            assert mirror.columns(things)["s"] == "longtext"  # JSON text now
            assert mirror.typed(things)["k2"]["s"] == "5"
        finally:
            agent.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(agent.wait(), timeout=30) == 0, text_of(log)
        expected, _ = await source_state(http, things)
        assert_typed(mirror, things, expected, wider)
    said = text_of(log)
    assert "the dataset's schema changed, and with it the mirror's typed columns" in said
    assert said.count("snapshot of") == 3, said


@pytest.mark.parametrize("mirror", ["mysql"], indirect=True)
async def test_a_mysql_target_that_cannot_be_used_is_one_line_naming_it_never_the_password(
    server: tuple[str, str], tmp_path: Path, mirror: Mirror
) -> None:
    base, _ = server
    server_url, database = mirror.to.rsplit("/", 1)
    cases = {
        f"mysql://root:s3cret-pw@127.0.0.1:3306/{database}": (
            1,
            "entrepot: sync stopped: cannot use MySQL at 127.0.0.1:3306, database "
            f"'{database}': Access denied for user 'root'",
        ),
        server_url.replace("mysql://", "mariadb://") + "/no_such_database_here": (
            1,
            "Unknown database 'no_such_database_here'",
        ),
        "mysql://root:s3cret-pw@127.0.0.1:3306": (2, "must name one database"),
    }
    for to, (status, said) in cases.items():
        log = tmp_path / f"{status}-{len(to)}.log"
        agent = await start_agent(base, ("anything",), to, log, "--once")
        assert await asyncio.wait_for(agent.wait(), timeout=60) == status, text_of(log)
        assert said in text_of(log)
        assert "s3cret" not in text_of(log)
        assert "Traceback" not in text_of(log)
