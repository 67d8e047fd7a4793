"""Bulk work's own connections: each caller's share, and a full pool, on a real PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from entrepot.problems import BulkLimited, ServiceUnavailable
from entrepot.store.bulk_slots import BulkSlots


@pytest.fixture
async def slots(database_url: str) -> AsyncIterator[BulkSlots]:
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=2)
    yield BulkSlots(pool, per_caller=2, queue_seconds=0.2)
    await pool.close()


async def test_a_caller_over_its_share_is_refused_at_once_with_retry_after(
    slots: BulkSlots,
) -> None:
    async with slots.admit("app:a"), slots.admit("app:a"):
        with pytest.raises(BulkLimited) as refused:
            async with slots.admit("app:a"):
                pass
        assert refused.value.status == 429
        assert int(refused.value.headers["Retry-After"]) > 0
        async with slots.admit("app:b"):  # another caller has a share of its own
            assert slots.running("app:b") == 1
    assert slots.running("app:a") == 0
    async with slots.admit("app:a"):  # the share comes back when the work ends
        pass


async def test_a_busy_bulk_pool_answers_503_after_a_short_wait(slots: BulkSlots) -> None:
    async with contextlib.AsyncExitStack() as held:
        for caller in ("app:a", "app:b"):
            conn = await held.enter_async_context(slots.connection(caller))
            assert await conn.fetchval("SELECT 1") == 1
        with pytest.raises(ServiceUnavailable) as busy:
            async with slots.connection("app:c"):
                pass
        assert busy.value.status == 503
        assert "Retry-After" in busy.value.headers
        assert slots.running("app:c") == 0  # refused work holds no share either
    async with slots.connection("app:c") as conn:
        assert await conn.fetchval("SELECT 2") == 2


async def test_admission_takes_no_connection_until_one_is_needed(slots: BulkSlots) -> None:
    async with slots.admit("app:a") as ticket:
        assert slots.pool.get_size() - slots.pool.get_idle_size() == 0
        async with ticket.connection():
            assert slots.pool.get_size() - slots.pool.get_idle_size() == 1


async def test_platform_administrators_have_no_share_to_exceed(slots: BulkSlots) -> None:
    async with slots.admit(None), slots.admit(None), slots.admit(None):
        assert slots.running("app:a") == 0
