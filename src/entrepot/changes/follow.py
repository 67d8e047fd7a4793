"""Following the feed: long polls and event streams, a short read at a time.

A follower waits for a change without holding a connection: each read takes
one for a moment (numbering what has committed, then reading a page) and
gives it back before the next wait. Access is looked at again before every
read, so a revoked grant or a deleted dataset ends the stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import orjson

from entrepot.access.narrowing import ReadView
from entrepot.aio import wait_event
from entrepot.changes import repository as repo
from entrepot.changes.incarnation import incarnation_of
from entrepot.changes.service import FeedPage, FeedService
from entrepot.changes.waiter import ChangeWaiter
from entrepot.ops.lifecycle import Lifecycle
from entrepot.principal import Principal
from entrepot.problems import Gone, Problem
from entrepot.store.work import reads

MAX_WAIT_SECONDS = 60.0
STREAM_BATCH = 500
MAX_SKIPPED_PAGES = 10  # pages of changes a narrowed reader cannot see, read in one long poll


class Follower:
    def __init__(
        self,
        pool: asyncpg.Pool,
        feed: FeedService,
        waiter: ChangeWaiter,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.pool = pool
        self.feed = feed
        self.waiter = waiter
        # When the replica stops (ops/lifecycle.py), a long poll answers what it has and
        # a stream ends: their clients carry on from another replica at once.
        self.lifecycle = lifecycle or Lifecycle()

    async def view(self, principal: Principal, dataset: str) -> ReadView:
        async with reads(self.pool) as reading:
            return await self.feed.view(reading.conn, principal, dataset)

    async def read(
        self, view: ReadView, after: int, limit: int, incarnation: str | None = None
    ) -> FeedPage:
        """Number what has committed, then read a page: read-your-writes on any replica."""
        async with reads(self.pool) as reading:
            await repo.sequence(reading.conn, view.access.meta.id)
            return await self.feed.read(reading.conn, view, after, limit, incarnation)

    async def poll(
        self,
        principal: Principal,
        dataset: str,
        after: int,
        limit: int,
        wait: float,
        incarnation: str | None = None,
    ) -> FeedPage:
        """A page of changes; with ``wait``, hold until at least one arrives or time runs out."""
        view = await self.view(principal, dataset)
        deadline = time.monotonic() + min(max(wait, 0.0), MAX_WAIT_SECONDS)
        dataset_id = view.access.meta.id
        incarnation = incarnation or incarnation_of(dataset_id)  # one life per poll
        skipped = 0
        while True:
            event = self.waiter.subscribe(dataset_id)
            try:
                page = await self.read(view, after, limit, incarnation)
                remaining = deadline - time.monotonic()
                if page.changes or remaining <= 0 or self.lifecycle.stopping:
                    return page
                if page.last_seq > after:  # only changes this reader sees as nothing
                    skipped += 1
                    if skipped >= MAX_SKIPPED_PAGES:
                        return page  # the reader resumes past them; one request stays short
                    after = page.last_seq
                    continue
                if not await wait_event(event, remaining) or self.lifecycle.stopping:
                    return page
            finally:
                self.waiter.unsubscribe(dataset_id, event)
            view = await self.view(principal, dataset)  # access may have changed meanwhile

    async def stream(
        self,
        principal: Principal,
        dataset: str,
        after: int,
        heartbeat: float,
        incarnation: str | None = None,
        credential: Callable[[], Awaitable[Principal]] | None = None,
    ) -> AsyncIterator[bytes]:
        """Server-Sent Events: one event per change, ``id`` = seq, heartbeats while idle.

        Access is re-checked before every read, and from the second on the credential
        too (``credential()``: who it is now, or a 401 once revoked): once the caller
        may no longer read the feed (credential or grant revoked, dataset deleted) the
        stream sends one ``event: error`` with the problem and ends; a position the feed cannot
        continue from (compacted away, past the head, or from an earlier
        incarnation of the dataset) gets ``event: gone`` and ends. The stream
        stays on the incarnation it started on, so a dataset deleted and
        created again ends it with ``gone``. When the replica stops, the stream
        ends after what it has read: the client reconnects with Last-Event-ID.
        """
        last = after
        checked = True  # the request was just authenticated
        yield b"retry: 2000\n\n"
        while True:
            try:
                if credential is not None and not checked:
                    principal = await credential()
                checked = False
                view = await self.view(principal, dataset)
            except Problem as problem:
                yield _event("error", orjson.dumps(problem.body()))
                return
            dataset_id = view.access.meta.id
            incarnation = incarnation or incarnation_of(dataset_id)
            event = self.waiter.subscribe(dataset_id)
            try:
                try:
                    page = await self.read(view, last, STREAM_BATCH, incarnation)
                except Gone as gone:
                    yield _event("gone", orjson.dumps(gone.body()))
                    return
                except Problem as problem:
                    yield _event("error", orjson.dumps(problem.body()))
                    return
                if page.changes:
                    yield b"".join(
                        b"id: %d\nevent: change\ndata: %s\n\n" % (seq, item)
                        for seq, item in zip(page.seqs, page.changes, strict=True)
                    )
                if page.last_seq > last:
                    last = page.last_seq
                    continue
                if self.lifecycle.stopping:
                    yield b": this replica is stopping: reconnect\n\n"
                    return
                if not await wait_event(event, heartbeat):
                    yield b": heartbeat\n\n"
            finally:
                self.waiter.unsubscribe(dataset_id, event)


def _event(name: str, data: bytes) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"
