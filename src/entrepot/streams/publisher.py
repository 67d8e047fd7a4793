"""The change feed into NATS JetStream: each configured dataset's feed, in feed order,
onto its stream's subject, by the one replica holding the lease (lease.py).

Where it resumes. On taking the lease (and after any failure) the publisher asks
JetStream for the last message on the subject and resumes after the feed seq its
``Entrepot-Seq`` header carries; it keeps no checkpoint of its own. A checkpoint
advanced only after the PubAck would be behind JetStream after a crash between
the two (a republish, harmless only within the duplicate window, and a failover
may take longer than that), and ahead of it after a NATS server restart lost
acknowledged-but-unsynced messages (a gap nobody would ever fill). The subject's
last message is exactly what consumers can read, so resuming after it neither
repeats nor skips anything. A republish that does happen anyway (a PubAck lost on
the way back) carries the same ``Nats-Msg-Id`` (dataset, incarnation, seq) and
JetStream drops it within its duplicate window.

Order. A page is published pipelined, each message expecting the subject's last
JetStream sequence to be the one before it (jetstream.py), so the subject only
grows in feed order, once per change, even with a stale publisher racing (see
lease.py for the fencing argument). Any failure drops what this replica
believes and it asks JetStream again.

Narrowing. A stream with a grant is read through that grant's read view (its
fields and row filter, the same view as the HTTP feed), read afresh for each page:
once the grant is revoked or expired the stream ends (``ended_at``, audited) and
nothing more is published to it. A stream without one carries full records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import orjson
import structlog

from entrepot.access.narrowing import ReadView, read_view
from entrepot.access.resolver import DatasetAccess
from entrepot.aio import start_loop, stop_tasks
from entrepot.changes import repository as changes_repo
from entrepot.changes.incarnation import incarnation_of
from entrepot.changes.service import FeedService
from entrepot.changes.waiter import ChangeWaiter
from entrepot.datasets.registry import DatasetRegistry
from entrepot.liveness import Heartbeat, Liveness
from entrepot.problems import Gone, NotFound
from entrepot.settings import Settings
from entrepot.store.types import Executor
from entrepot.store.work import reads, unit_of_work
from entrepot.store_failures import STORE_FAILURES
from entrepot.streams import messages, metrics, service
from entrepot.streams import repository as repo
from entrepot.streams.jetstream import (
    PUBLISH_FAILURES,
    WORST_PAGE_SECONDS,
    JetStreamLink,
    StreamConflict,
)
from entrepot.streams.lease import Lease
from entrepot.streams.repository import StreamRow

log = structlog.get_logger("entrepot.streams")

INTERVAL_SECONDS = 1.0  # the longest idle wait (new streams are noticed this often)
PAGE = 1000  # changes a page reads and publishes pipelined
ROUNDS_PER_STREAM = 20  # pages per stream before the next, so one busy feed starves none
CHANGES_READ = frozenset({"changes:read"})
# What a round may meet and the loop rides out: the store or NATS away, a stream in the way.
ROUND_FAILURES: tuple[type[BaseException], ...] = (
    *STORE_FAILURES,
    *PUBLISH_FAILURES,
    StreamConflict,
)


@dataclass
class Cursor:
    """How far a stream is, as this lease term has seen it."""

    after: int  # the feed seq covered: published, or scanned and hidden from the stream
    stream_seq: int  # JetStream's sequence of the subject's last message (0: none)


class Publisher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        feed: FeedService,
        registry: DatasetRegistry,
        waiter: ChangeWaiter,
        link: JetStreamLink,
        lease: Lease,
        *,
        interval: float = INTERVAL_SECONDS,
        liveness: Liveness | None = None,
    ) -> None:
        self.pool = pool
        self.feed = feed
        self.registry = registry
        self.waiter = waiter
        self.link = link
        self.lease = lease
        self.interval = interval
        self.liveness = liveness or Liveness()
        self._cursors: dict[str, Cursor] = {}  # by JetStream stream name
        self._lagging: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: Heartbeat | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        pool: asyncpg.Pool,
        feed: FeedService,
        registry: DatasetRegistry,
        waiter: ChangeWaiter,
        liveness: Liveness | None = None,
    ) -> Publisher:
        assert settings.nats_url
        link = JetStreamLink(settings.nats_url, settings.jetstream_duplicate_window_seconds)
        lease = Lease(settings.jetstream_lease_seconds)
        return cls(pool, feed, registry, waiter, link, lease, liveness=liveness)

    def start(self) -> None:
        every = max(self.interval, self.lease.seconds / 3, WORST_PAGE_SECONDS)
        self._heartbeat = self.liveness.register("jetstream-publisher", every)
        self._task = start_loop(self._run(self._heartbeat), "jetstream-publisher")

    async def stop(self) -> None:
        self.liveness.unregister(self._heartbeat)
        await stop_tasks([self._task])
        try:  # let another replica take over at once rather than after expiry
            await self.lease.release(self.pool)
        except STORE_FAILURES as exc:
            log.warning("publisher_lease_release_failed", error=type(exc).__name__)
        metrics.LEASE_HELD.set(0)
        await self.link.close()

    # --- the loop ------------------------------------------------------------

    async def _run(self, heartbeat: Heartbeat) -> None:
        while True:
            heartbeat.beat()
            try:
                if not await self._keep_lease():
                    await asyncio.sleep(self.lease.seconds / 3)
                    continue
                streams = await repo.list_streams(self.pool, active_only=True)
                datasets = sorted({s.dataset_id for s in streams})
                # Subscribe before reading, so a commit landing meanwhile still wakes us.
                events = [(d, self.waiter.subscribe(d)) for d in datasets]
                try:
                    busy = await self.publish_all(streams, heartbeat.beat)
                    if not busy:
                        await self._sleep([e for _, e in events])
                finally:
                    for dataset_id, event in events:
                        self.waiter.unsubscribe(dataset_id, event)
            except asyncio.CancelledError:
                raise
            except ROUND_FAILURES as exc:
                log.warning("jetstream_publish_failed", error=f"{type(exc).__name__}: {exc}")
                self._cursors.clear()
                await asyncio.sleep(self.interval)

    async def _keep_lease(self) -> bool:
        try:
            held = await self.lease.refresh(self.pool)
        except STORE_FAILURES:
            self.lease.lose()
            held = False
        if not held:
            self._cursors.clear()  # whatever we knew may be stale by the time we hold it again
            self._forget_lag(set())
        metrics.LEASE_HELD.set(1 if held else 0)
        return held

    async def _sleep(self, events: list[asyncio.Event]) -> None:
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        timeout = min(self.interval, self.lease.seconds / 3)
        try:
            if waits:
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(timeout)
        finally:
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def publish_all(
        self, streams: list[StreamRow], beat: Callable[[], None] = lambda: None
    ) -> bool:
        """Bring every stream up to its feed's head (a bounded number of pages each);
        True if some stream has more to publish right away."""
        pool = self.pool
        for dataset_id in await changes_repo.pending_datasets(
            pool, [s.dataset_id for s in streams]
        ):
            await changes_repo.sequence(pool, dataset_id)  # a head that has not moved hides
        busy = False
        for stream in streams:
            for _ in range(ROUNDS_PER_STREAM):
                beat()
                if not await self._keep_lease():
                    return False
                try:
                    more = await self.publish_page(stream)
                except StreamConflict as exc:  # this stream's, not the others': go on
                    log.warning("jetstream_stream_conflict", stream=stream.stream, error=str(exc))
                    self._cursors.pop(stream.stream, None)
                    break
                if not more:
                    break
            else:
                busy = True
        self._forget_lag({(s.stream, s.dataset) for s in streams})
        return busy

    # --- one page --------------------------------------------------------------

    async def publish_page(self, stream: StreamRow) -> bool:
        """Publish the next page of ``stream``'s feed; True if more may follow now."""
        cursor = self._cursors.get(stream.stream) or await self._resume(stream)
        incarnation = incarnation_of(stream.dataset_id)
        async with reads(self.pool) as reading:
            conn = reading.conn
            # One snapshot for the grant and the page: a change committed after the
            # grant's revocation is never read with the grant still live.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                view = await self._view(conn, stream)
                if isinstance(view, str):
                    ended = view
                else:
                    ended = None
                    try:
                        page = await self.feed.read(conn, view, cursor.after, PAGE)
                    except Gone as gone:
                        self._skip_compacted(stream, cursor, gone)
                        return True
                    except NotFound:
                        return False  # the dataset is being deleted: its streams go with it
                    head = await changes_repo.head_seq(conn, stream.dataset_id)
        if ended is not None:
            if ended != "":
                await self._end(stream, ended)
            return False
        if page.changes:
            items = []
            for raw in page.changes:
                change = orjson.loads(raw)
                items.append(
                    (
                        messages.headers(stream.dataset, incarnation, change),
                        messages.body(stream.dataset, incarnation, raw),
                    )
                )
            if not self.lease.held:
                return False
            await self.link.ensure_stream(stream.stream, stream.subject)
            published = await self.link.publish(stream.subject, items, cursor.stream_seq)
            duplicates = 0
            for seq, ack in zip(page.seqs, published.acks, strict=False):
                cursor.after = seq
                cursor.stream_seq = ack.seq or cursor.stream_seq
                duplicates += bool(ack.duplicate)
            if published.acks:
                stored = len(published.acks) - duplicates
                metrics.PUBLISHED.labels(stream.stream, "published").inc(stored)
                metrics.PUBLISHED.labels(stream.stream, "duplicate").inc(duplicates)
            if published.failure is not None:
                outcome = "rejected" if published.rejected else "failed"
                metrics.PUBLISHED.labels(stream.stream, outcome).inc()
                log.warning(
                    "jetstream_publish_interrupted",
                    stream=stream.stream,
                    outcome=outcome,
                    after_seq=cursor.after,
                    error=f"{type(published.failure).__name__}: {published.failure}",
                )
                self._cursors.pop(stream.stream, None)
                self.link.forget(stream.stream)
                metrics.set_lag(stream.stream, stream.dataset, head - cursor.after)
                return False
        cursor.after = page.last_seq
        self._cursors[stream.stream] = cursor
        metrics.set_lag(stream.stream, stream.dataset, head - cursor.after)
        self._lagging.add((stream.stream, stream.dataset))
        return page.scanned == PAGE

    def _skip_compacted(self, stream: StreamRow, cursor: Cursor, gone: Gone) -> None:
        """The feed dropped changes before they were published: go on from its horizon."""
        if gone.extra.get("reason") != "compacted":
            raise StreamConflict(f"{stream.stream}: {gone.detail}")
        horizon = int(str(gone.extra["min_seq"]))
        log.warning(
            "jetstream_changes_compacted",
            stream=stream.stream,
            from_seq=cursor.after + 1,
            to_seq=horizon,
        )
        metrics.PUBLISHED.labels(stream.stream, "compacted").inc(horizon - cursor.after)
        cursor.after = horizon
        self._cursors[stream.stream] = cursor

    async def _resume(self, stream: StreamRow) -> Cursor:
        """Where JetStream says the stream is (docstring: why not a checkpoint)."""
        await self.link.ensure_stream(stream.stream, stream.subject)
        last = await self.link.last_message(stream.stream, stream.subject)
        if last is None:
            return Cursor(0, 0)
        if last.incarnation != incarnation_of(stream.dataset_id):
            raise StreamConflict(
                f"{stream.stream} holds incarnation {last.incarnation!r} of "
                f"{stream.dataset!r}, not the current one"
            )
        log.info("jetstream_resumed", stream=stream.stream, after_seq=last.seq)
        return Cursor(last.seq, last.stream_seq)

    async def _view(self, conn: Executor, stream: StreamRow) -> ReadView | str:
        """What the stream may carry: the full records, or its grant's view; else why
        nothing is to be published: the reason to end the stream, or "" (its dataset is
        going, and the stream with it)."""
        try:
            meta = await self.registry.get(stream.dataset, conn)
        except NotFound:
            return ""
        if meta.id != stream.dataset_id:
            return ""  # the name is a new dataset's now; this stream is going with the old
        if stream.grant_id is None:
            return read_view(DatasetAccess(meta, "owner", CHANGES_READ))
        grant = await repo.get_grant(conn, stream.grant_id)
        if grant is None or grant.revoked:
            return "grant_revoked"
        if not grant.live:
            return "grant_expired"
        if "changes:read" not in grant.scopes:
            return "grant_narrowed"  # its scopes no longer include the feed
        access = DatasetAccess(
            meta,
            "grant",
            CHANGES_READ,
            frozenset(grant.fields) if grant.fields is not None else None,
            orjson.loads(grant.row_filter) if grant.row_filter else None,
            grant.id,
        )
        return read_view(access)

    async def _end(self, stream: StreamRow, reason: str) -> None:
        async with unit_of_work(self.pool) as work:
            await service.end_stream(work, stream.id, reason, actor=service.PUBLISHER)
        metrics.ENDED.labels(reason).inc()
        self._cursors.pop(stream.stream, None)
        log.info("jetstream_stream_ended", stream=stream.stream, reason=reason)

    def _forget_lag(self, keep: set[tuple[str, str]]) -> None:
        for labels in self._lagging - keep:
            metrics.forget_lag(*labels)
        self._lagging &= keep
