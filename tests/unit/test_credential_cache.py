"""The credential cache: concurrent misses of one credential share a lookup."""

from __future__ import annotations

import asyncio

import pytest

from entrepot.auth.authenticate import CredentialCache
from entrepot.principal import ALL_SCOPES, Principal
from entrepot.problems import Unauthorized

ADMIN = Principal("admin", "key:1", "key:1", ALL_SCOPES, is_admin=True)


async def test_requests_missing_the_same_credential_at_once_share_one_lookup() -> None:
    cache = CredentialCache(ttl=1.0)
    release = asyncio.Event()
    lookups = 0

    async def lookup() -> Principal:
        nonlocal lookups
        lookups += 1
        await release.wait()
        return ADMIN

    waiting = [asyncio.create_task(cache.load(b"k", lookup)) for _ in range(5)]
    await asyncio.sleep(0)  # every task has asked before the lookup answers
    release.set()
    answers = await asyncio.gather(*waiting)

    assert lookups == 1
    assert [principal for principal, _ in answers] == [ADMIN] * 5
    assert [ran for _, ran in answers].count(True) == 1  # only one ran it (first use, audit)


async def test_a_failed_lookup_fails_every_waiter_and_is_not_remembered() -> None:
    cache = CredentialCache(ttl=1.0)
    lookups = 0

    async def refused() -> Principal:
        nonlocal lookups
        lookups += 1
        await asyncio.sleep(0)
        raise Unauthorized("no", reason="unknown")

    results = await asyncio.gather(
        cache.load(b"k", refused), cache.load(b"k", refused), return_exceptions=True
    )
    assert all(isinstance(r, Unauthorized) for r in results)
    assert lookups == 1
    with pytest.raises(Unauthorized):
        await cache.load(b"k", refused)  # the next miss looks again
    assert lookups == 2


async def test_a_waiter_that_leaves_does_not_cancel_the_others_lookup() -> None:
    cache = CredentialCache(ttl=1.0)
    release = asyncio.Event()

    async def lookup() -> Principal:
        await release.wait()
        return ADMIN

    leaving = asyncio.create_task(cache.load(b"k", lookup))
    staying = asyncio.create_task(cache.load(b"k", lookup))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert (await staying)[0] is ADMIN
    with pytest.raises(asyncio.CancelledError):
        await leaving


def test_a_zero_ttl_caches_nothing() -> None:
    cache = CredentialCache(ttl=0)
    cache.put(b"k", ADMIN)
    assert cache.get(b"k") is None
    cache = CredentialCache(ttl=60)
    cache.put(b"k", ADMIN)
    assert cache.get(b"k") is ADMIN
