"""The MySQL target against a real MariaDB: typed columns, refusals, schema changes.

(What it shares with the other targets, pages and snapshots being atomic, is in
test_sync_apply.py, which runs on all three.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from entrepot.sync.base import SchemaDrift
from entrepot.sync.columns import Unholdable
from entrepot.sync.mysql import MySQLTarget
from entrepot.sync.targets import open_target
from tests.mirrors import Mirror
from tests.waiting import until

pytestmark = pytest.mark.parametrize("mirror", ["mysql"], indirect=True)

TABLE = "products"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sku": {"type": "string", "maxLength": 16},
        "price": {"type": "number"},
        "stock": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
        "serial": {"type": "integer"},
        "active": {"type": "boolean"},
        "added": {"type": "string", "format": "date-time"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "version": {"type": "string"},
    },
}
RECORD = {
    "sku": "w-1",
    "price": 9.5,
    "stock": 12,
    "serial": 98765432109876543210987,
    "active": True,
    "added": "2025-01-02T10:00:00.5-05:00",
    "tags": ["a", "é"],
    "version": "v2",
}


def upsert(seq: int, rid: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"seq": seq, "op": "upsert", "id": rid, "version": version, "data": data}


@pytest.fixture
async def target(mirror: Mirror) -> AsyncIterator[MySQLTarget]:
    opened = await open_target(mirror.to)
    assert isinstance(opened, MySQLTarget)
    yield opened
    await opened.close()


async def test_typed_columns_hold_each_propertys_value_beside_the_exact_record(
    target: MySQLTarget, mirror: Mirror
) -> None:
    assert await target.prepare(TABLE, "products", SCHEMA) is None
    assert mirror.columns(TABLE) == {
        "id": "varchar(255)",
        "version": "bigint(20)",
        "data": "longtext",
        "sku": "varchar(16)",
        "price": "double",
        "stock": "bigint(20)",
        "serial": "decimal(65,0)",
        "active": "tinyint(1)",
        "added": "datetime(6)",
        "tags": "longtext",
        "version_": "longtext",
    }
    sparse = {"sku": "w-2"}
    await target.apply(
        TABLE, "products", [upsert(1, "w-1", 3, RECORD), upsert(2, "w-2", 1, sparse)], 2
    )
    typed = mirror.typed(TABLE)
    assert typed["w-1"] == {
        "version": 3,
        "sku": "w-1",
        "price": 9.5,
        "stock": 12,
        "serial": Decimal("98765432109876543210987"),
        "active": 1,
        "added": datetime(2025, 1, 2, 15, 0, 0, 500000),
        "tags": '["a","é"]',
        "version_": "v2",
    }
    assert typed["w-2"] == {
        "version": 1,
        "sku": "w-2",
        "price": None,
        "stock": None,
        "serial": None,
        "active": None,
        "added": None,
        "tags": None,
        "version_": None,
    }
    assert (await mirror.state(TABLE))[0]["w-1"] == (3, RECORD)  # data: the record, exactly


async def test_a_snapshot_fills_the_typed_columns_too(target: MySQLTarget, mirror: Mirror) -> None:
    await target.prepare(TABLE, "products", SCHEMA)
    async with target.snapshot(TABLE, "products") as loader:
        await loader.add([("w-1", 4, '{"sku":"w-1","stock":7,"serial":1e2}')])
        await loader.commit(10, "1")
    typed = mirror.typed(TABLE)["w-1"]
    assert (typed["sku"], typed["stock"], typed["serial"]) == ("w-1", 7, Decimal(100))


async def test_ids_differing_in_case_or_trailing_spaces_are_different_rows(
    target: MySQLTarget, mirror: Mirror
) -> None:
    await target.prepare(TABLE, "products", SCHEMA)
    page = [upsert(1, "a", 1, {}), upsert(2, "A", 1, {}), upsert(3, "a ", 1, {})]
    await target.apply(TABLE, "products", page, 3)
    assert sorted((await mirror.state(TABLE))[0]) == ["A", "a", "a "]


async def test_a_row_too_large_for_an_innodb_page_is_refused_before_anything_is_written(
    target: MySQLTarget, mirror: Mirror
) -> None:
    """Under 65,535 bytes, so only the server's page-size rule refuses it: the probe asks."""
    schema = {
        "type": "object",
        "properties": {f"code{i}": {"type": "string", "maxLength": 60} for i in range(40)},
    }
    with pytest.raises(Unholdable, match=r"Row size too large.*the largest columns are 'code0'"):
        await target.prepare(TABLE, "products", schema)
    assert mirror.columns(TABLE) == {}
    assert await mirror.state(TABLE) == ({}, None)


async def test_a_table_name_longer_than_mysql_allows_is_refused(target: MySQLTarget) -> None:
    with pytest.raises(Unholdable, match="is 70 characters, MySQL allows 64"):
        await target.prepare("p" * 70, "products", SCHEMA)


async def test_a_record_that_does_not_fit_its_columns_is_drift_and_nothing_is_applied(
    target: MySQLTarget, mirror: Mirror
) -> None:
    await target.prepare(TABLE, "products", SCHEMA)
    await target.apply(TABLE, "products", [upsert(1, "w-1", 1, {"sku": "w-1"})], 1)
    before = await mirror.state(TABLE)
    page = [upsert(2, "w-2", 1, {"sku": "w-2"}), upsert(3, "w-3", 1, {"stock": "many"})]
    with pytest.raises(SchemaDrift, match="record 'w-3': 'stock' is \"many\""):
        await target.apply(TABLE, "products", page, 3)
    assert await mirror.state(TABLE) == before


async def test_changed_columns_are_reported_and_the_next_snapshot_remakes_the_table(
    target: MySQLTarget, mirror: Mirror
) -> None:
    await target.prepare(TABLE, "products", SCHEMA)
    async with target.snapshot(TABLE, "products") as loader:
        await loader.add([("w-1", 1, '{"sku":"w-1"}')])
        await loader.commit(5, "1")
    described = {**SCHEMA, "description": "same columns"}
    assert await target.prepare(TABLE, "products", described) is None

    wider = {
        "type": "object",
        "properties": {**SCHEMA["properties"], "colour": {"type": "string", "maxLength": 8}},
    }
    assert "schema changed" in (await target.prepare(TABLE, "products", wider) or "")
    assert "colour" not in mirror.columns(TABLE), "the table is left until the snapshot"
    async with target.snapshot(TABLE, "products") as loader:
        await loader.add([("w-1", 2, '{"sku":"w-1","colour":"red"}')])
        assert (await mirror.state(TABLE))[1] == 5, "the old mirror, until the swap"
        await loader.commit(9, "1")
    assert mirror.columns(TABLE)["colour"] == "varchar(8)"
    assert mirror.typed(TABLE)["w-1"]["colour"] == "red"
    assert await mirror.state(TABLE) == ({"w-1": (2, {"sku": "w-1", "colour": "red"})}, 9)

    # A restarted agent compares with the columns the checkpoint recorded.
    assert await restarted(mirror, wider) is None
    assert "another version of its schema" in (await restarted(mirror, SCHEMA) or "")


async def restarted(mirror: Mirror, schema: dict[str, Any]) -> str | None:
    again = await open_target(mirror.to)
    try:
        return await again.prepare(TABLE, "products", schema)
    finally:
        await again.close()


async def test_a_transaction_whose_caller_is_cancelled_finishes_and_the_target_goes_on(
    target: MySQLTarget, mirror: Mirror
) -> None:
    await target.prepare(TABLE, "products", SCHEMA)
    page = [upsert(i, f"r{i}", 1, {"sku": f"r{i}", "stock": i}) for i in range(1, 3001)]
    applying = asyncio.ensure_future(target.apply(TABLE, "products", page, 3000))
    await asyncio.sleep(0)  # it has started: its transaction is handed to a thread
    applying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await applying

    async def committed() -> bool:
        return (await mirror.state(TABLE))[1] == 3000

    await until(committed, "the cancelled caller's page commits all the same")
    assert len((await mirror.state(TABLE))[0]) == 3000
    assert await target.apply(TABLE, "products", [upsert(3001, "r1", 2, {"sku": "x"})], 3001)
    assert mirror.typed(TABLE)["r1"]["sku"] == "x"
