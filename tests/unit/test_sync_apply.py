"""How `entrepot sync` applies the feed to a mirror: each target (a SQLite file, a
PostgreSQL database, a MariaDB database; tests/mirrors.py), real transactions.

The property everything rests on: a page of changes and its checkpoint are
one transaction, and so are a snapshot and its checkpoint. Whatever happens
mid-way (an exception, or the process dying outright) leaves the previous
rows and checkpoint as they were.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import pytest

from entrepot.sync.base import Target
from entrepot.sync.targets import FeedGap, open_target
from tests.mirrors import Mirror

TABLE = "m_things"
# The values these tests write: `v` takes any JSON (a JSON column in MySQL).
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "n": {"type": "integer"}, "v": {}},
}


def upsert(seq: int, rid: str, version: int, **data: Any) -> dict[str, Any]:
    return {"seq": seq, "op": "upsert", "id": rid, "version": version, "data": data}


def delete(seq: int, rid: str, version: int) -> dict[str, Any]:
    return {"seq": seq, "op": "delete", "id": rid, "version": version, "data": None}


@pytest.fixture
async def target(mirror: Mirror) -> AsyncIterator[Target]:
    opened = await open_target(mirror.to)
    assert await opened.prepare(TABLE, "things", SCHEMA) is None
    yield opened
    await opened.close()


async def test_a_page_applies_in_order_and_moves_the_checkpoint(
    target: Target, mirror: Mirror
) -> None:
    page = [
        upsert(1, "a", 1, name="A"),
        upsert(2, "b", 1, name="B"),
        upsert(3, "a", 2, name="A2"),
        delete(4, "b", 2),
        upsert(5, "c", 1, name="C", n=12345678901234567890123),
    ]
    assert await target.apply(TABLE, "things", page, 5) == 5
    rows, cp = await mirror.state(TABLE)
    assert rows == {
        "a": (2, {"name": "A2"}),
        "c": (1, {"name": "C", "n": 12345678901234567890123}),
    }
    assert cp == 5


async def test_a_delete_then_recreate_in_one_page_ends_with_the_new_record(
    target: Target, mirror: Mirror
) -> None:
    await target.apply(TABLE, "things", [upsert(1, "a", 1, v=1), upsert(2, "a", 2, v=2)], 2)
    await target.apply(TABLE, "things", [delete(3, "a", 3), upsert(4, "a", 1, v="new")], 4)
    assert await mirror.state(TABLE) == ({"a": (1, {"v": "new"})}, 4)


async def test_an_older_version_never_overwrites_a_newer_row(
    target: Target, mirror: Mirror
) -> None:
    await target.apply(TABLE, "things", [upsert(1, "a", 5, v="five")], 1)
    await target.apply(TABLE, "things", [upsert(2, "a", 3, v="three"), delete(3, "a", 4)], 3)
    assert await mirror.state(TABLE) == ({"a": (5, {"v": "five"})}, 3)


async def test_a_page_applied_twice_changes_nothing_the_second_time(
    target: Target, mirror: Mirror
) -> None:
    page = [upsert(1, "a", 1, v=1), upsert(2, "a", 2, v=2)]
    await target.apply(TABLE, "things", page, 2)
    await target.apply(TABLE, "things", page, 2)
    overlapping = [upsert(2, "a", 2, v=2), upsert(3, "b", 1, v=1)]
    assert await target.apply(TABLE, "things", overlapping, 3) == 3
    assert await mirror.state(TABLE) == ({"a": (2, {"v": 2}), "b": (1, {"v": 1})}, 3)


async def test_changes_out_of_order_are_refused_and_nothing_is_applied(
    target: Target, mirror: Mirror
) -> None:
    await target.apply(TABLE, "things", [upsert(1, "a", 1, v=1)], 1)
    with pytest.raises(FeedGap):
        await target.apply(TABLE, "things", [upsert(3, "b", 1), upsert(2, "c", 1)], 4)
    with pytest.raises(FeedGap):  # a page may not reach past its own end
        await target.apply(TABLE, "things", [upsert(2, "b", 1), upsert(5, "c", 1)], 4)
    assert await mirror.state(TABLE) == ({"a": (1, {"v": 1})}, 1)


async def test_a_narrowed_page_skips_the_seqs_it_was_not_shown(
    target: Target, mirror: Mirror
) -> None:
    """A narrowed grant is not shown the changes it cannot see; last_seq covers them."""
    await target.apply(TABLE, "things", [upsert(1, "a", 1, v=1)], 1)
    assert await target.apply(TABLE, "things", [upsert(3, "b", 1, v=1)], 6) == 6
    assert await mirror.state(TABLE) == ({"a": (1, {"v": 1}), "b": (1, {"v": 1})}, 6)


async def test_a_failure_mid_page_leaves_rows_and_checkpoint_unchanged(
    target: Target, mirror: Mirror
) -> None:
    await target.apply(TABLE, "things", [upsert(1, "a", 1, v=1)], 1)
    before = await mirror.state(TABLE)
    broken = [
        upsert(2, "a", 2, v=2),
        upsert(3, "b", 1, v=1),
        {"seq": 4, "op": "upsert", "id": "c", "version": "not a number", "data": {}},
        upsert(5, "d", 1, v=1),
    ]
    with pytest.raises(ValueError, match="not a number"):
        await target.apply(TABLE, "things", broken, 5)
    assert await mirror.state(TABLE) == before
    # and the target carries on normally afterwards
    assert await target.apply(TABLE, "things", [upsert(2, "a", 2, v=2)], 2) == 2


CRASH_MID_PAGE = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from entrepot.sync.targets import open_target

    class DiesWhenRead:
        def __int__(self):
            os._exit(9)  # the process dies here, two rows into the transaction

    async def main():
        target = await open_target(sys.argv[1])
        await target.prepare("m_things", "things", json.loads(sys.argv[2]))
        page = [
            {"seq": 3, "op": "upsert", "id": "a", "version": 2, "data": {"v": 2}},
            {"seq": 4, "op": "delete", "id": "x", "version": 2, "data": None},
            {"seq": 5, "op": "upsert", "id": "z", "version": DiesWhenRead(), "data": {}},
        ]
        await target.apply("m_things", "things", page, 5)

    asyncio.run(main())
    """
)


async def test_a_process_killed_mid_page_leaves_rows_and_checkpoint_unchanged(
    target: Target, mirror: Mirror
) -> None:
    await target.apply(TABLE, "things", [upsert(1, "a", 1, v=1), upsert(2, "x", 1)], 2)
    before = await mirror.state(TABLE)
    await target.close()
    died = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASH_MID_PAGE,
        mirror.to,
        json.dumps(SCHEMA),
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(died.communicate(), timeout=60)
    assert died.returncode == 9, stderr.decode()
    assert await mirror.state(TABLE) == before


async def test_a_snapshot_replaces_rows_and_sets_the_checkpoint_together(
    target: Target, mirror: Mirror
) -> None:
    await target.apply(TABLE, "things", [upsert(1, "old", 1, v=0)], 1)
    async with target.snapshot(TABLE, "things") as loader:
        await loader.add([("a", 3, '{"v":3}'), ("b", 1, '{"v":1}')])
        assert await mirror.state(TABLE) == ({"old": (1, {"v": 0})}, 1), "staged only"
        await loader.add([("c", 7, '{"v":7}')])
        await loader.commit(40, "7")
    assert await mirror.state(TABLE) == (
        {"a": (3, {"v": 3}), "b": (1, {"v": 1}), "c": (7, {"v": 7})},
        40,
    )


async def test_an_abandoned_snapshot_leaves_the_previous_mirror(
    target: Target, mirror: Mirror
) -> None:
    await target.apply(TABLE, "things", [upsert(1, "old", 1, v=0)], 1)
    before = await mirror.state(TABLE)

    async def load_until_the_stream_breaks() -> None:
        async with target.snapshot(TABLE, "things") as loader:
            await loader.add([("a", 3, '{"v":3}')])
            raise ConnectionError("the export stream broke")

    with pytest.raises(ConnectionError):
        await load_until_the_stream_breaks()
    assert await mirror.state(TABLE) == before
    async with target.snapshot(TABLE, "things") as loader:  # and a retry starts clean
        await loader.add([("b", 1, '{"v":1}')])
        await loader.commit(9, "7")
    assert await mirror.state(TABLE) == ({"b": (1, {"v": 1})}, 9)
