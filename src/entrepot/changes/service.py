"""Reading the change feed: pages, long polls and event streams.

Every read goes through the caller's :class:`~entrepot.access.narrowing.ReadView`:
a narrowed grantee sees a record's change only if the record was visible to
it before or after (a record leaving its rows is a delete), never one that
touched only hidden fields, and hidden fields never.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import orjson

from entrepot.access.narrowing import ReadView, read_view
from entrepot.access.resolver import AccessResolver
from entrepot.aio import wait_event
from entrepot.auth.principal import Principal
from entrepot.changes import repository as repo
from entrepot.changes.incarnation import incarnation_of
from entrepot.changes.waiter import ChangeWaiter
from entrepot.policy import require_dataset_scope
from entrepot.problems import Gone, NotFound, Problem
from entrepot.records.query import build_feed_sql

MAX_WAIT_SECONDS = 60.0
STREAM_BATCH = 500
MAX_SKIPPED_PAGES = 10  # pages of changes a narrowed reader cannot see, read in one long poll
_TS = orjson.OPT_UTC_Z


@dataclass(frozen=True)
class FeedPage:
    """Changes a reader may see, and how far the page reached (``last_seq``).

    ``last_seq`` can pass changes that are not in ``changes``: those a
    narrowed grant sees as nothing. A reader resumes after it all the same.
    """

    changes: list[bytes]
    last_seq: int
    incarnation: str
    seqs: list[int] = field(default_factory=list)
    scanned: int = 0  # changes the page read, shown or not

    def body(self) -> bytes:
        return b"".join(
            (
                b'{"changes":[',
                b",".join(self.changes),
                b'],"last_seq":',
                str(self.last_seq).encode(),
                b',"incarnation":',
                orjson.dumps(self.incarnation),
                b"}",
            )
        )


def render_change(row: asyncpg.Record, view: ReadView) -> bytes:
    data = row["data"]
    data_json = view.project_text(data).encode() if data is not None else b"null"
    return b"".join(
        (
            b'{"seq":',
            str(row["seq"]).encode(),
            b',"op":',
            orjson.dumps(row["op"]),
            b',"id":',
            orjson.dumps(row["id"]),
            b',"version":',
            str(row["version"]).encode(),
            b',"data":',
            data_json,
            b',"at":',
            orjson.dumps(row["at"], option=_TS),
            b"}",
        )
    )


class FeedService:
    def __init__(self, pool: asyncpg.Pool, access: AccessResolver, waiter: ChangeWaiter) -> None:
        self.pool = pool
        self.access = access
        self.waiter = waiter

    async def view(self, principal: Principal, dataset: str) -> ReadView:
        access = await self.access.for_dataset(principal, dataset)
        return read_view(require_dataset_scope(access, "changes:read"))

    async def read(
        self, view: ReadView, after: int, limit: int, incarnation: str | None = None
    ) -> FeedPage:
        """Up to ``limit`` changes after ``after`` (fewer shown when narrowing hides some)."""
        meta = view.access.meta
        current = incarnation_of(meta.id)
        await repo.sequence(self.pool, meta.id)  # what has committed is in the feed from now
        head = await repo.head(self.pool, meta.id)
        if head is None:
            raise NotFound(f"Dataset {meta.name!r} does not exist or is not visible to you.")
        _check_position(after, incarnation, current, head)
        sql, args = build_feed_sql(
            meta.id, after, limit, view.schema, view.row_conditions, view.fields
        )
        rows = await repo.read(self.pool, sql, args)
        if rows and rows[0]["seq"] != after + 1:
            # Compaction may have committed between the two reads above: the
            # horizon it moved (atomically with its deletes) says so.
            head = await repo.head(self.pool, meta.id)
            if head is not None:
                _check_position(after, incarnation, current, head)
        shown = [row for row in rows if row["op"] is not None]
        return FeedPage(
            [render_change(row, view) for row in shown],
            rows[-1]["seq"] if rows else after,
            current,
            [row["seq"] for row in shown],
            len(rows),
        )

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
                if page.changes or remaining <= 0:
                    return page
                if page.last_seq > after:  # only changes this reader sees as nothing
                    skipped += 1
                    if skipped >= MAX_SKIPPED_PAGES:
                        return page  # the reader resumes past them; one request stays short
                    after = page.last_seq
                    continue
                if not await wait_event(event, remaining):
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
    ) -> AsyncIterator[bytes]:
        """Server-Sent Events: one event per change, ``id`` = seq, heartbeats while idle.

        Access is re-checked before every read: once the caller may no longer
        read the feed (grant revoked, dataset deleted) the stream sends one
        ``event: error`` with the problem and ends; a position the feed cannot
        continue from (compacted away, past the head, or from an earlier
        incarnation of the dataset) gets ``event: gone`` and ends. The stream
        stays on the incarnation it started on, so a dataset deleted and
        created again ends it with ``gone``.
        """
        last = after
        yield b"retry: 2000\n\n"
        while True:
            try:
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
                if not await wait_event(event, heartbeat):
                    yield b": heartbeat\n\n"
            finally:
                self.waiter.unsubscribe(dataset_id, event)


def _check_position(
    after: int, incarnation: str | None, current: str, head: asyncpg.Record
) -> None:
    """A position the feed cannot continue from is 410: the reader must resnapshot.

    Carrying on would silently diverge: the changes before the horizon are
    gone, a position past the head was never this feed's (the dataset was
    deleted and created again, or the position is made up), and positions of
    an earlier incarnation count a different log.
    """
    resnapshot = (
        "Re-read the dataset with GET .../export (its X-Entrepot-Seq and "
        "X-Entrepot-Incarnation headers say where to resume)."
    )
    where = {"min_seq": head["min_seq"], "last_seq": head["last_seq"], "incarnation": current}
    if incarnation is not None and incarnation != current:
        raise Gone(
            f"The position belongs to an earlier incarnation ({incarnation!r}) of this "
            f"dataset; it has been deleted and created again since. {resnapshot}",
            reason="incarnation",
            **where,
        )
    if after > head["last_seq"]:
        raise Gone(
            f"seq {after} is past the head of this feed (last_seq {head['last_seq']}): the "
            f"dataset was deleted and created again, or the position is wrong. {resnapshot}",
            reason="ahead",
            **where,
        )
    if after < head["min_seq"]:
        raise Gone(
            f"Changes up to seq {head['min_seq']} have been compacted away. {resnapshot}",
            reason="compacted",
            **where,
        )


def _event(name: str, data: bytes) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"
