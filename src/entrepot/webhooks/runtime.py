"""The webhook machinery one replica runs: the service, the dispatcher and the worker."""

from __future__ import annotations

import asyncpg

from entrepot.changes.service import FeedService
from entrepot.changes.waiter import ChangeWaiter
from entrepot.liveness import Liveness
from entrepot.settings import Settings
from entrepot.webhooks.config import WebhookConfig
from entrepot.webhooks.dispatcher import Dispatcher
from entrepot.webhooks.enqueue import Enqueuer
from entrepot.webhooks.service import WebhookService
from entrepot.webhooks.worker import DeliveryWorker


class WebhookRuntime:
    def __init__(
        self,
        pool: asyncpg.Pool,
        feed: FeedService,
        waiter: ChangeWaiter,
        dsn: str,
        settings: Settings,
        liveness: Liveness | None = None,
    ) -> None:
        config = WebhookConfig.from_settings(settings)
        self.service = WebhookService(feed, config)
        self.dispatcher = Dispatcher(Enqueuer(pool, feed, config), waiter, liveness=liveness)
        self.worker = DeliveryWorker(pool, dsn, config, self.dispatcher.kick, liveness=liveness)

    @classmethod
    def started(
        cls,
        pool: asyncpg.Pool,
        feed: FeedService,
        waiter: ChangeWaiter,
        dsn: str,
        settings: Settings,
        liveness: Liveness | None = None,
    ) -> WebhookRuntime:
        runtime = cls(pool, feed, waiter, dsn, settings, liveness)
        runtime.dispatcher.start()
        runtime.worker.start()
        return runtime

    async def stop(self) -> None:
        await self.dispatcher.stop()
        await self.worker.stop()

    def health(self) -> str:
        """'stuck' when due deliveries have waited unclaimed for minutes (readiness keeps 200)."""
        return "stuck" if self.worker.stuck else "ok"
