"""Webhook use cases: subscriptions, the delivery log, retries, replays and rotation.

A webhook acts with its app's authority: it may follow a dataset only if the
app can read that dataset's feed (``changes:read``), and every event is
rendered through the app's read view (``enqueue.py``). Every mutation is
audited in its transaction.

The use cases run on the request's unit of work (the edge opens and ends it):
they read and write through ``work.conn`` or ``reads.conn`` and never commit.
What wakes the delivery workers or makes the dispatchers re-read their
subscriptions (a NOTIFY on ``entrepot_webhooks``) is an effect released after
the commit: no write transaction holds PostgreSQL's notify lock through its
commit, and a woken worker finds the committed rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

import asyncpg

from entrepot.apps import repository as apps_repo
from entrepot.auditing.log import record
from entrepot.changes.service import FeedService
from entrepot.pagination import decode_cursor, encode_cursor, fingerprint
from entrepot.principal import Principal, can_manage_org, require_scope
from entrepot.problems import Conflict, Forbidden, NotFound, Unprocessable, refuse_nulls
from entrepot.store.types import Conn, Executor
from entrepot.store.work import Reads, UnitOfWork
from entrepot.uuids import uuid_or_404
from entrepot.webhooks import deliveries_repository as deliveries_repo
from entrepot.webhooks import dispatch_repository as dispatch_repo
from entrepot.webhooks import queue_repository as queue_repo
from entrepot.webhooks import repository as repo
from entrepot.webhooks import signing, ssrf
from entrepot.webhooks.config import WebhookConfig
from entrepot.webhooks.enqueue import requeue
from entrepot.webhooks.events import app_principal
from entrepot.webhooks.models import (
    Replay,
    RotateSecret,
    WebhookCreate,
    WebhookPatch,
)
from entrepot.webhooks.repository import Webhook
from entrepot.webhooks.shaping import delivery_out, ordered_events, shown_url, webhook_out

Signal = Callable[[Executor], Awaitable[None]]  # a NOTIFY on the webhooks channel


def _after_commit(work: UnitOfWork, signals: list[Signal]) -> None:
    """Send each signal once, after the commit, on the request's connection.

    Inside a transaction PostgreSQL folds identical notifications into one;
    sent after it, each statement is its own, so the caller lists each once.
    """
    for signal in signals:
        work.after_commit(partial(signal, work.conn))


class WebhookService:
    def __init__(self, feed: FeedService, config: WebhookConfig) -> None:
        self.feed = feed
        self.config = config

    # --- who may manage -----------------------------------------------------

    def _authorize(
        self, principal: Principal, app_id: uuid.UUID, org_id: uuid.UUID, hidden: NotFound
    ) -> None:
        """The app itself (with webhooks:manage) or an admin of its organisation."""
        if can_manage_org(principal, org_id):
            return
        if principal.app_id != app_id:
            raise hidden
        require_scope(principal, "webhooks:manage")

    async def _app(self, conn: Conn, principal: Principal, raw_app: str) -> apps_repo.App:
        app_id = uuid_or_404(raw_app, "Application")
        row = await apps_repo.get_app(conn, app_id)
        hidden = NotFound(
            f"Application {raw_app!r} does not exist or is not visible to you.", denial=True
        )
        if row is None:
            raise hidden
        self._authorize(principal, row.id, row.org_id, hidden)
        return row

    async def _webhook(
        self, conn: Conn, principal: Principal, raw_id: str, *, lock: bool = False
    ) -> Webhook:
        webhook_id = uuid_or_404(raw_id, "Webhook")
        row = await repo.get_webhook(conn, webhook_id, lock=lock)
        hidden = NotFound(
            f"Webhook {raw_id!r} does not exist or is not visible to you.", denial=True
        )
        if row is None:
            raise hidden
        self._authorize(principal, row.app_id, row.org_id, hidden)
        return row

    # --- validation ---------------------------------------------------------

    async def _check_url(self, url: str) -> None:
        try:
            await ssrf.resolve(url, self.config.networks)
        except ssrf.UnsafeURL as exc:
            raise Unprocessable(
                f"The webhook URL is refused: {exc}.",
                errors=[{"path": "/url", "message": str(exc)}],
            ) from None

    async def _dataset_ids(
        self, conn: Conn, app_id: uuid.UUID, names: list[str]
    ) -> list[tuple[int, str]]:
        """Each dataset the app may follow (it needs changes:read on it), else 422."""
        app = await repo.app_for_dispatch(conn, app_id)
        scopes = list(app.scopes) if app is not None else []
        org_id = app.org_id if app is not None else uuid.UUID(int=0)
        principal = app_principal(app_id, org_id, scopes, uuid.UUID(int=0))
        found: list[tuple[int, str]] = []
        errors = []
        for i, name in enumerate(names):
            if name in (n for _, n in found):
                errors.append({"path": f"/datasets/{i}", "message": "listed twice"})
                continue
            try:
                view = await self.feed.view(conn, principal, name)
            except (NotFound, Forbidden):
                errors.append(
                    {
                        "path": f"/datasets/{i}",
                        "message": f"{name!r} does not exist or the app cannot read its "
                        "changes (changes:read)",
                    }
                )
                continue
            found.append((view.access.meta.id, view.access.meta.name))
        if errors:
            raise Unprocessable(
                "The webhook's app must be able to read the changes of every dataset it follows.",
                errors=errors,
            )
        return found

    # --- subscriptions ------------------------------------------------------

    async def create(
        self, work: UnitOfWork, principal: Principal, raw_app: str, body: WebhookCreate
    ) -> dict[str, Any]:
        secret = signing.new_secret()
        events = ordered_events(list(body.events))
        conn = work.conn
        app = await self._app(conn, principal, raw_app)
        await self._check_url(body.url)
        datasets = await self._dataset_ids(conn, app.id, body.datasets)
        webhook_id = await repo.insert_webhook(conn, app.id, body.url, events, secret)
        await repo.set_datasets(conn, webhook_id, [d for d, _ in datasets])
        await record(
            conn,
            principal,
            "webhook.created",
            f"webhook:{webhook_id}",
            org_id=app.org_id,
            app_id=app.id,
            details={
                "url": shown_url(body.url),
                "datasets": [n for _, n in datasets],
                "events": events,
            },
        )
        row = await repo.get_webhook(conn, webhook_id)
        _after_commit(work, [queue_repo.announce_subscriptions])
        assert row is not None
        return {**webhook_out(row), "secret": secret}

    async def list_webhooks(
        self, reads: Reads, principal: Principal, raw_app: str, *, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        conn = reads.conn
        app = await self._app(conn, principal, raw_app)
        fp = fingerprint("webhooks", str(app.id))
        after = None
        if cursor:
            position = decode_cursor(cursor, fp)
            try:
                after = (datetime.fromisoformat(position[0]), uuid.UUID(position[1]))
            except (ValueError, TypeError, IndexError):
                after = None
        rows = await repo.list_webhooks(conn, app.id, after=after, limit=limit + 1)
        items = [webhook_out(r) for r in rows[:limit]]
        more = len(rows) > limit
        next_cursor = None
        if more:
            last = rows[limit - 1]
            next_cursor = encode_cursor([last.created_at.isoformat(), str(last.id)], fp)
        return {"data": items, "next_cursor": next_cursor}

    async def get(self, reads: Reads, principal: Principal, raw_id: str) -> dict[str, Any]:
        return webhook_out(await self._webhook(reads.conn, principal, raw_id))

    async def update(
        self, work: UnitOfWork, principal: Principal, raw_id: str, patch: WebhookPatch
    ) -> dict[str, Any]:
        changes = patch.model_dump(exclude_unset=True)
        refuse_nulls(changes, changes.keys())  # no webhook field may be null
        details: dict[str, Any] = {}
        signals: list[Signal] = []
        conn = work.conn
        row = await self._webhook(conn, principal, raw_id, lock=True)
        webhook_id = row.id
        if "url" in changes:
            await self._check_url(changes["url"])
            details["url"] = shown_url(changes["url"])
        events = ordered_events(changes["events"]) if "events" in changes else None
        if events is not None:
            details["events"] = events
        if "url" in changes or events is not None:
            await repo.update_webhook(conn, webhook_id, url=changes.get("url"), events=events)
        if "datasets" in changes:
            datasets = await self._dataset_ids(conn, row.app_id, changes["datasets"])
            removed = await repo.set_datasets(conn, webhook_id, [d for d, _ in datasets])
            if removed:
                await repo.cancel_for_datasets(conn, webhook_id, removed)
            details["datasets"] = [n for _, n in datasets]
            signals.append(queue_repo.announce_subscriptions)
        disabled = row.disabled_at is not None
        if changes.get("disabled") is True and not disabled:
            cancelled = await repo.disable(conn, webhook_id, f"disabled by {principal.subject}")
            details["disabled"] = True
            details["cancelled_deliveries"] = cancelled
        elif changes.get("disabled") is False and disabled:
            revived = await repo.enable(conn, webhook_id)
            signals.append(queue_repo.wake_workers)
            if queue_repo.announce_subscriptions not in signals:
                signals.append(queue_repo.announce_subscriptions)
            details["disabled"] = False
            details["revived_deliveries"] = revived
        await record(
            conn,
            principal,
            "webhook.updated",
            f"webhook:{webhook_id}",
            org_id=row.org_id,
            app_id=row.app_id,
            details=details,
        )
        updated = await repo.get_webhook(conn, webhook_id)
        _after_commit(work, signals)
        assert updated is not None
        return webhook_out(updated)

    async def delete(self, work: UnitOfWork, principal: Principal, raw_id: str) -> None:
        conn = work.conn
        row = await self._webhook(conn, principal, raw_id, lock=True)
        await repo.delete_webhook(conn, row.id)
        await record(
            conn,
            principal,
            "webhook.deleted",
            f"webhook:{row.id}",
            org_id=row.org_id,
            app_id=row.app_id,
            details={"url": shown_url(row.url)},
        )

    async def rotate_secret(
        self, work: UnitOfWork, principal: Principal, raw_id: str, body: RotateSecret
    ) -> dict[str, Any]:
        secret = signing.new_secret()
        conn = work.conn
        row = await self._webhook(conn, principal, raw_id, lock=True)
        until = await repo.rotate_secret(conn, row.id, secret, body.overlap_seconds)
        await record(
            conn,
            principal,
            "webhook.secret_rotated",
            f"webhook:{row.id}",
            org_id=row.org_id,
            app_id=row.app_id,
            details={"overlap_seconds": body.overlap_seconds},
        )
        return {"secret": secret, "previous_secret_expires_at": until}

    # --- the delivery log ---------------------------------------------------

    async def deliveries(
        self,
        reads: Reads,
        principal: Principal,
        raw_id: str,
        *,
        status: str | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        conn = reads.conn
        row = await self._webhook(conn, principal, raw_id)
        fp = fingerprint("deliveries", str(row.id), status)
        before = None
        if cursor:
            position = decode_cursor(cursor, fp)
            before = position[0] if position and isinstance(position[0], int) else None
        rows = await deliveries_repo.list_deliveries(
            conn, row.id, status=status, before=before, limit=limit + 1
        )
        items = [delivery_out(r) for r in rows[:limit]]
        more = len(rows) > limit
        return {
            "data": items,
            "next_cursor": encode_cursor([rows[limit - 1].n], fp) if more else None,
        }

    async def retry(
        self, work: UnitOfWork, principal: Principal, raw_id: str, raw_delivery: str
    ) -> dict[str, Any]:
        """Queue a finished delivery (failed, delivered or cancelled) again, due now."""
        delivery_id = uuid_or_404(raw_delivery, "Delivery")
        conn = work.conn
        webhook = await self._webhook(conn, principal, raw_id)
        row = await deliveries_repo.get_delivery(conn, webhook.id, delivery_id, lock=True)
        if row is None:
            raise NotFound(f"Delivery {raw_delivery!r} does not exist.")
        if webhook.disabled_at is not None:
            raise Conflict("The webhook is disabled; enable it (PATCH disabled=false) first.")
        if row.status in ("pending", "delivering"):
            raise Conflict("The delivery is already queued.")
        try:
            # No savepoint: the conflict rolls the whole unit of work back anyway.
            await deliveries_repo.requeue(conn, row.id)
        except asyncpg.UniqueViolationError:
            raise Conflict("That event is already queued in another delivery.") from None
        await record(
            conn,
            principal,
            "webhook.delivery_retried",
            f"webhook:{webhook.id}",
            org_id=webhook.org_id,
            app_id=webhook.app_id,
            details={"delivery": str(row.id), "previous_status": row.status},
        )
        updated = await deliveries_repo.get_delivery(conn, webhook.id, delivery_id)
        _after_commit(work, [queue_repo.wake_workers])
        assert updated is not None
        return delivery_out(updated)

    async def replay(
        self, work: UnitOfWork, principal: Principal, raw_id: str, body: Replay
    ) -> dict[str, Any]:
        """Queue again the events from ``from_seq`` up to what was already dispatched."""
        conn = work.conn
        webhook = await self._webhook(conn, principal, raw_id)
        if webhook.disabled_at is not None:
            raise Conflict("The webhook is disabled; enable it (PATCH disabled=false) first.")
        not_followed = Unprocessable(
            f"The webhook does not follow {body.dataset!r}.",
            errors=[{"path": "/dataset", "message": "not followed by this webhook"}],
        )
        if body.dataset not in webhook.datasets:
            raise not_followed
        app = await repo.app_for_dispatch(conn, webhook.app_id)
        if app is None:
            raise Conflict("The webhook's application is disabled.")
        principal_app = app_principal(app.id, app.org_id, app.scopes, webhook.id)
        try:
            view = await self.feed.view(conn, principal_app, body.dataset)
        except (NotFound, Forbidden):
            raise Unprocessable(
                f"The app can no longer read the changes of {body.dataset!r}.",
                errors=[{"path": "/dataset", "message": "not readable by the app"}],
            ) from None
        dataset_id = view.access.meta.id
        cursor = await dispatch_repo.lock_cursor(conn, webhook.id, dataset_id, wait=True)
        if cursor is None:
            raise not_followed
        enqueued, through = await requeue(
            conn,
            self.feed,
            view,
            webhook_id=webhook.id,
            wanted=frozenset(webhook.events),
            from_seq=body.from_seq,
            through=cursor,
        )
        if enqueued:
            _after_commit(work, [queue_repo.wake_workers])
        await record(
            conn,
            principal,
            "webhook.replayed",
            f"webhook:{webhook.id}",
            org_id=webhook.org_id,
            app_id=webhook.app_id,
            details={
                "dataset": body.dataset,
                "from_seq": body.from_seq,
                "through_seq": through,
                "enqueued": enqueued,
            },
        )
        return {
            "enqueued": enqueued,
            "from_seq": body.from_seq,
            "through_seq": through,
            "next_from_seq": through + 1 if through < cursor else None,
        }
