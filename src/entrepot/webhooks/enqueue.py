"""Committed feed changes become queued deliveries: the dispatcher's step and replays.

Every event is rendered through the webhook's app's read view, so narrowing
hides the same fields and rows as on the feed itself. Deliveries are queued
in the caller's transaction, beside the cursor that says how far it got.
"""

from __future__ import annotations

import uuid
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
from entrepot.webhooks.events import Batch, app_principal
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
    dataset_id = view.access.meta.id
    batch = Batch()
    batch.add_page(
        changes,
        webhook_id=webhook_id,
        dataset_id=dataset_id,
        dataset=view.access.meta.name,
        wanted=wanted,
    )
    enqueued = await dispatch_repo.enqueue(
        conn,
        webhook_id,
        dataset_id,
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

    async def dispatch(self, pair: PairBehind) -> bool:
        """Queue the next page of one (webhook, dataset) pair; True if more may follow.

        The cursor row stays locked (SKIP LOCKED: another replica moves on)
        from reading it to advancing it, and the deliveries are inserted in
        the same transaction, so each change is queued exactly once.
        """
        webhook_id, dataset_id = pair.webhook_id, pair.dataset_id
        principal = app_principal(pair.app_id, pair.org_id, pair.scopes, webhook_id)
        async with unit_of_work(self.pool) as work:
            conn = work.conn
            try:
                view = await self.feed.view(conn, principal, pair.dataset)
            except (NotFound, Forbidden):
                # The app lost access: hold the cursor; nothing is sent until access returns.
                return False
            if view.access.meta.id != dataset_id:
                return False  # the name is a new dataset's now; the old one's cursor is going
            cursor = await dispatch_repo.lock_cursor(conn, webhook_id, dataset_id)
            if cursor is None:
                return False
            try:
                page = await self.feed.read(conn, view, cursor, DISPATCH_PAGE)
            except Gone as gone:
                horizon = int(gone.extra["min_seq"])
                log.warning(
                    "webhook_events_compacted",
                    webhook=str(webhook_id),
                    dataset=pair.dataset,
                    from_seq=cursor + 1,
                    to_seq=horizon,
                )
                await dispatch_repo.advance_cursor(conn, webhook_id, dataset_id, horizon)
                return True
            if not page.scanned:
                return False
            if page.changes:  # a narrowed app may see none of the page's changes
                queued = await queue_changes(
                    conn,
                    view,
                    page.changes,
                    webhook_id=webhook_id,
                    wanted=frozenset(pair.events),
                    delay_seconds=self.config.schedule[0],
                )
                if queued:
                    work.after_commit(partial(queue_repo.wake_workers, conn))
            await dispatch_repo.advance_cursor(conn, webhook_id, dataset_id, page.last_seq)
        return page.scanned == DISPATCH_PAGE
