"""Committed feed changes become queued deliveries: the dispatcher's step and replays.

Every event is rendered through the webhook's app's read view, so narrowing
hides the same fields and rows as on the feed itself. Deliveries are queued
in the caller's transaction, beside the cursor that says how far it got.
An app's webhooks on one dataset share that view: one read of the feed
queues the page for all of them (fan-out), in one statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial

import asyncpg
import structlog

from entrepot.access.narrowing import ReadView
from entrepot.changes.service import FeedService
from entrepot.problems import Forbidden, Gone, NotFound
from entrepot.store.types import Conn
from entrepot.store.work import unit_of_work
from entrepot.webhooks import dispatch_repository as dispatch_repo
from entrepot.webhooks import queue_repository as queue_repo
from entrepot.webhooks.config import WebhookConfig
from entrepot.webhooks.dispatch_repository import PairBehind
from entrepot.webhooks.events import Batch, app_principal, parse
from entrepot.webhooks.metrics import ENQUEUED

log = structlog.get_logger("entrepot.webhooks")

DISPATCH_PAGE = 500
REPLAY_MAX = 10_000


async def queue_changes(
    conn: Conn,
    view: ReadView,
    changes: list[bytes],
    *,
    webhook_id: uuid.UUID,
    wanted: frozenset[str],
    delay_seconds: float,
) -> int:
    """Queue the wanted events among ``changes`` (feed items, in seq order); how many."""
    batch = Batch()
    batch.add_parsed(
        parse(changes),
        webhook_id=webhook_id,
        dataset_id=view.access.meta.id,
        dataset=view.access.meta.name,
        wanted=wanted,
        after=0,
    )
    return await enqueue_batch(conn, view.access.meta.id, batch, delay_seconds)


async def enqueue_batch(conn: Conn, dataset_id: int, batch: Batch, delay_seconds: float) -> int:
    enqueued = await dispatch_repo.enqueue(
        conn,
        dataset_id,
        webhook_ids=batch.webhook_ids,
        seqs=batch.seqs,
        record_ids=batch.record_ids,
        events=batch.events,
        message_ids=batch.message_ids,
        payloads=batch.payloads,
        delay_seconds=delay_seconds,
    )
    ENQUEUED.inc(enqueued)
    return enqueued


async def requeue(
    conn: Conn,
    feed: FeedService,
    view: ReadView,
    *,
    webhook_id: uuid.UUID,
    wanted: frozenset[str],
    from_seq: int,
    through: int,
) -> tuple[int, int]:
    """Queue again the events from ``from_seq`` up to ``through`` (at most
    :data:`REPLAY_MAX` changes scanned): (queued, last seq covered)."""
    after, scanned, enqueued = from_seq - 1, 0, 0
    while after < through and scanned < REPLAY_MAX:
        page = await feed.read(conn, view, after, min(DISPATCH_PAGE, REPLAY_MAX - scanned))
        if not page.scanned:
            break
        changes = [c for seq, c in zip(page.seqs, page.changes, strict=True) if seq <= through]
        enqueued += await queue_changes(
            conn, view, changes, webhook_id=webhook_id, wanted=wanted, delay_seconds=0
        )
        scanned += page.scanned
        after = min(page.last_seq, through)
    return enqueued, max(after, from_seq - 1)


class Enqueuer:
    """The dispatcher's unit of work, one (webhook, dataset) cursor at a time."""

    def __init__(self, pool: asyncpg.Pool, feed: FeedService, config: WebhookConfig) -> None:
        self.pool = pool
        self.feed = feed
        self.config = config

    async def dispatch(self, pairs: Sequence[PairBehind]) -> bool:
        """Queue the next page for some of one app's webhooks on one dataset; True if
        more may follow.

        The cursor rows stay locked (SKIP LOCKED: another replica moves on)
        from reading them to advancing them, and the deliveries are inserted
        in the same transaction, so each change is queued exactly once. The
        page is read from the lowest cursor; a webhook further on gets only
        what lies past its own (the dispatcher groups pairs at one cursor).
        """
        first = pairs[0]
        dataset_id = first.dataset_id
        principal = app_principal(first.app_id, first.org_id, first.scopes, first.webhook_id)
        async with unit_of_work(self.pool) as work:
            conn = work.conn
            try:
                view = await self.feed.view(conn, principal, first.dataset)
            except (NotFound, Forbidden):
                # The app lost access: hold the cursors; nothing is sent until access returns.
                return False
            if view.access.meta.id != dataset_id:
                return False  # the name is a new dataset's now; the old one's cursors are going
            cursors = await dispatch_repo.lock_cursors(
                conn, dataset_id, [p.webhook_id for p in pairs]
            )
            if not cursors:
                return False
            held = list(cursors)
            try:
                page = await self.feed.read(conn, view, min(cursors.values()), DISPATCH_PAGE)
            except Gone as gone:
                horizon = int(gone.extra["min_seq"])
                log.warning(
                    "webhook_events_compacted",
                    webhooks=[str(w) for w in held],
                    dataset=first.dataset,
                    from_seq=min(cursors.values()) + 1,
                    to_seq=horizon,
                )
                await dispatch_repo.advance_cursors(conn, dataset_id, held, horizon)
                return True
            if not page.scanned:
                return False
            if page.changes:  # a narrowed app may see none of the page's changes
                parsed = parse(page.changes)
                batch = Batch()
                for pair in pairs:
                    if pair.webhook_id in cursors:
                        batch.add_parsed(
                            parsed,
                            webhook_id=pair.webhook_id,
                            dataset_id=dataset_id,
                            dataset=first.dataset,
                            wanted=frozenset(pair.events),
                            after=cursors[pair.webhook_id],
                        )
                queued = await enqueue_batch(conn, dataset_id, batch, self.config.schedule[0])
                if queued:
                    work.after_commit(partial(queue_repo.wake_workers, conn))
            await dispatch_repo.advance_cursors(conn, dataset_id, held, page.last_seq)
        return page.scanned == DISPATCH_PAGE
