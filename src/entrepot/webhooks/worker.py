"""Deliver queued webhook events, in every replica.

A claimer takes due deliveries with ``FOR UPDATE SKIP LOCKED`` (so no two
replicas take the same one) whenever slots are free, in one statement: up to
the worker's free slots (``concurrency``) in all, and up to each endpoint's
own free slots (its adaptive limit, :mod:`entrepot.webhooks.limiter`) within
its fair share of the worker's (``fair_share``), so a slow or failing endpoint
holds only its own share and never delays another's deliveries. Only the
earliest unfinished delivery of a record is claimable, so a record's events
arrive in seq order (a batch holds at most one delivery per record, and its
next one only once this one's outcome is written); different records go in
parallel. A claim is a lease: an attempt whose replica dies is claimed again
once ``locked_until`` passes.

Attempts reuse connections (one keep-alive client per destination,
:mod:`entrepot.webhooks.clients`), and their outcomes are written in batches
(:mod:`entrepot.webhooks.recorder`). Workers sleep until a written outcome, a
NOTIFY on ``entrepot_webhooks`` (new or finished work, anywhere) or the next
due time, at most a couple of seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import orjson
import structlog

from entrepot import __version__
from entrepot.aio import start_loop, stop_tasks, wait_event
from entrepot.auditing.log import record
from entrepot.liveness import Heartbeat, Liveness
from entrepot.ops import tracing
from entrepot.store import listen
from entrepot.webhooks import dispatch_repository as dispatch_repo
from entrepot.webhooks import queue_repository as queue_repo
from entrepot.webhooks import recorder as recorder_module
from entrepot.webhooks import repository as repo
from entrepot.webhooks import signing, ssrf
from entrepot.webhooks.config import (
    LOG_RETENTION_SECONDS,
    RETRY_AFTER_CAP_SECONDS,
    STUCK_AFTER_SECONDS,
    WebhookConfig,
)
from entrepot.webhooks.limiter import INITIAL, Limit, fair_share
from entrepot.webhooks.metrics import (
    DELIVERIES,
    LATENCY,
    OLDEST_PENDING_AGE,
    QUEUE_DEPTH,
    set_feed_lag,
)
from entrepot.webhooks.queue_repository import Job, Outcome
from entrepot.webhooks.recorder import Recorder
from entrepot.webhooks.transport import DeliveryError, Transport

log = structlog.get_logger("entrepot.webhooks")

CONNECT_TIMEOUT_SECONDS = 5.0
IDLE_MAX_SECONDS = 2.0
STATS_SECONDS = 5.0
PURGE_EVERY_ROUNDS = 120  # about every 10 minutes
PURGE_BATCH = 5_000
DRAIN_SECONDS = 10.0
IDLE_LIMIT_SECONDS = 600.0  # an endpoint's learned limit is forgotten after this long unused
USER_AGENT = f"Entrepot-Webhooks/{__version__}"


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    response: str | None
    retry_after: float | None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


# A generator of the worker's own: the jitter leaves the process's global ``random``
# alone (a test framework drawing from it in another thread sees it move otherwise).
_JITTER = random.Random()


def next_delay(
    schedule: tuple[float, ...], attempts: int, retry_after: float | None
) -> float | None:
    """Seconds until the next attempt after ``attempts`` failed ones; None when exhausted."""
    if attempts >= len(schedule):
        return None
    delay = schedule[attempts] * _JITTER.uniform(0.9, 1.1)
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP_SECONDS))
    return delay


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").replace("\x00", "\ufffd")


class DeliveryWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        config: WebhookConfig,
        on_subscriptions: Callable[[], None] = lambda: None,
        *,
        liveness: Liveness | None = None,
    ) -> None:
        self.pool = pool
        self.liveness = liveness or Liveness()
        self.on_subscriptions = on_subscriptions
        self.dsn = dsn
        self.config = config
        self.stuck = False
        self._lag_series: frozenset[tuple[str, str]] = frozenset()
        self._wake = asyncio.Event()
        # Each endpoint's adaptive limit, and when it was last claimed for.
        self._limits: dict[uuid.UUID, Limit] = {}
        self._used: dict[uuid.UUID, float] = {}
        # Each attempt in flight, and the (delivery, lease) it holds.
        self._inflight: dict[asyncio.Task[None], tuple[uuid.UUID, uuid.UUID]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._recording: asyncio.Task[None] | None = None
        self._heartbeats: list[Heartbeat] = []
        self._transport = Transport(min(CONNECT_TIMEOUT_SECONDS, config.timeout))
        self._recorder = Recorder(pool, self._wake.set)

    def start(self) -> None:
        register = self.liveness.register
        listener = register("webhook-listener", listen.EVERY_SECONDS)
        # While every slot is busy the claimer waits for an attempt to end (its timeout).
        claimer = register("webhook-claimer", self.config.timeout + IDLE_MAX_SECONDS)
        recorder = register("webhook-recorder", recorder_module.IDLE_SECONDS)
        stats = register("webhook-stats", STATS_SECONDS)
        self._heartbeats = [listener, claimer, recorder, stats]
        self._tasks = [
            start_loop(self._listen(listener), "webhook-listener"),
            start_loop(self._claim_loop(claimer), "webhook-claimer"),
            start_loop(self._stats_loop(stats), "webhook-stats"),
        ]
        self._recording = start_loop(self._recorder.run(recorder), "webhook-recorder")

    async def stop(self) -> None:
        self.liveness.unregister(*self._heartbeats)
        await stop_tasks(self._tasks)
        if self._inflight:  # let attempts in flight finish and record their outcome
            await asyncio.wait(set(self._inflight), timeout=DRAIN_SECONDS)
        unfinished = list(self._inflight.values())
        await stop_tasks(set(self._inflight))
        await stop_tasks([self._recording])
        with contextlib.suppress(Exception):  # outcomes not yet written: their leases expire
            await self._recorder.flush()
        await self._hand_back(unfinished)
        self._transport.close()

    def wake(self) -> None:
        self._wake.set()

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)

    async def _hand_back(self, claims: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """Make the attempts cut short claimable again now, by any replica, rather than
        when their leases run out. The attempt may have reached the receiver: the
        delivery goes again (at least once, as always), under the same webhook-id."""
        if not claims:
            return
        try:
            released = await queue_repo.release(self.pool, claims)
            await queue_repo.wake_workers(self.pool)
        except Exception as exc:  # the leases still expire: handed back late, never lost
            log.warning("webhook_hand_back_failed", error=f"{type(exc).__name__}: {exc}")
            return
        log.info("webhook_deliveries_handed_back", count=released)

    # --- loops ------------------------------------------------------------

    def _caps(self) -> tuple[dict[uuid.UUID, int], int]:
        """Each known endpoint's free slots, within its fair share of the worker's, and
        what an endpoint not listed may take (the initial limit, within the same share)."""
        concurrency = self.config.concurrency
        held = sum(limit.in_flight for limit in self._limits.values())
        caps = {
            webhook: min(
                limit.free, fair_share(concurrency, held - limit.in_flight, limit.in_flight)
            )
            for webhook, limit in self._limits.items()
        }
        newcomer = min(INITIAL, self.config.endpoint_concurrency, fair_share(concurrency, held, 0))
        return caps, newcomer

    def _limit(self, webhook_id: uuid.UUID) -> Limit:
        limit = self._limits.get(webhook_id)
        if limit is None:
            limit = self._limits[webhook_id] = Limit(self.config.endpoint_concurrency)
        self._used[webhook_id] = time.monotonic()
        return limit

    async def _claim_loop(self, heartbeat: Heartbeat) -> None:
        while True:
            heartbeat.beat()
            free = self.config.concurrency - len(self._inflight)
            if free <= 0:  # every slot busy: an attempt ending wakes us
                self._wake.clear()
                await wait_event(self._wake, IDLE_MAX_SECONDS)
                continue
            self._wake.clear()
            try:
                lease = uuid.uuid4()
                caps, newcomer = self._caps()
                async with self.pool.acquire() as conn, conn.transaction():
                    jobs = await queue_repo.claim(
                        conn,
                        lease,
                        self.config.lease_seconds,
                        free,
                        per_endpoint=newcomer,
                        caps=caps,
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook_claim_failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)
                continue
            for job in jobs:
                limit = self._limit(job.webhook_id)
                task = asyncio.create_task(self._deliver(job, lease, limit, limit.started()))
                self._inflight[task] = (job.id, lease)
                task.add_done_callback(self._forget)
            if jobs:
                # More may have fallen due while this claim ran (fan-out queues a commit's
                # deliveries for every endpoint at once): look again at once, and wait
                # only when a claim finds nothing.
                continue
            # Nothing claimable: wait for new work, a written outcome (which frees a slot
            # and may make a record's next event claimable) or the next due time.
            delay = IDLE_MAX_SECONDS
            with contextlib.suppress(Exception):
                due = await queue_repo.seconds_until_due(self.pool)
                if due is not None and due > 0:
                    delay = min(due, IDLE_MAX_SECONDS)
            await wait_event(self._wake, max(delay, 0.005))

    async def _stats_loop(self, heartbeat: Heartbeat) -> None:
        rounds = 0
        while True:
            heartbeat.beat()
            try:
                row = await queue_repo.backlog(self.pool, STUCK_AFTER_SECONDS)
                await queue_repo.hold_back_behind_retries(self.pool)
                QUEUE_DEPTH.set(row.depth)
                OLDEST_PENDING_AGE.set(row.oldest_age)
                self.stuck = bool(row.stuck)
                self._lag_series = set_feed_lag(
                    await dispatch_repo.feed_lag(self.pool), self._lag_series
                )
                rounds += 1
                if rounds % PURGE_EVERY_ROUNDS == 1:
                    await queue_repo.purge_finished(self.pool, LOG_RETENTION_SECONDS, PURGE_BATCH)
                self._forget_idle()
                self._transport.close_idle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook_stats_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(STATS_SECONDS)

    def _forget_idle(self) -> None:
        """Drop the limits of endpoints long unused (they start again from the initial one)."""
        now = time.monotonic()
        for webhook, used in list(self._used.items()):
            limit = self._limits.get(webhook)
            if now - used > IDLE_LIMIT_SECONDS and (limit is None or not limit.in_flight):
                self._used.pop(webhook, None)
                self._limits.pop(webhook, None)

    async def _listen(self, heartbeat: Heartbeat) -> None:
        def connected() -> None:
            self._wake.set()  # work may have arrived while we were not listening
            self.on_subscriptions()

        await listen.listen_forever(
            self.dsn,
            queue_repo.CHANNEL,
            self._on_message,
            on_connect=connected,
            on_disconnect=self._wake.set,
            name="webhooks",
            heartbeat=heartbeat,
        )

    def _on_message(self, payload: str) -> None:
        if payload == queue_repo.SUBSCRIPTIONS:
            self.on_subscriptions()
        else:
            self._wake.set()

    # --- one attempt ------------------------------------------------------

    async def _deliver(self, job: Job, lease: uuid.UUID, limit: Limit, token: int) -> None:
        attributes = {
            "entrepot.webhook.id": str(job.webhook_id),
            "entrepot.delivery.id": str(job.id),
        }
        started = time.monotonic()
        ended = False
        try:
            with tracing.span("webhook delivery", attributes):
                attempt = await self.attempt(job)
                code = attempt.status_code
                # The endpoint's part is over: 2xx and 410 are answers, anything else a fault.
                answered = code is not None and (200 <= code < 300 or code == 410)
                limit.ended(token, ok=answered, seconds=time.monotonic() - started)
                ended = True
                await self._record(job, lease, attempt)
        except Exception as exc:  # the lease expires and the delivery is claimed again
            log.warning(
                "webhook_delivery_error",
                delivery=str(job.id),
                error=f"{type(exc).__name__}: {exc}",
            )
            self._wake.set()
        finally:
            if not ended:  # cut short before an answer: the endpoint's slot is free again
                limit.ended(token, ok=False, seconds=time.monotonic() - started)

    async def attempt(self, job: Job) -> Attempt:
        body: bytes = job.payload.encode()
        try:
            target = await ssrf.resolve(job.url, self.config.networks)
        except ssrf.UnsafeURL as exc:
            return Attempt(None, f"refused: {exc}", None, None)
        secrets = [job.secret]
        if job.previous_secret:
            secrets.append(job.previous_secret)
        headers = signing.headers(secrets, job.message_id, int(time.time()), body)
        headers.update(
            {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "host": target.host_header,
            }
        )
        parts = urlsplit(target.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        destination = (parts.scheme, str(target.address), parts.port or 0, target.server_name)
        try:
            async with asyncio.timeout(self.config.timeout):
                with tracing.client_request("POST", target.url, headers) as answered:
                    answer = await self._transport.post(destination, path, headers, body)
                    answered(answer.status)
        except TimeoutError:
            return Attempt(None, f"timed out after {self.config.timeout:g} s", None, None)
        except DeliveryError as exc:
            return Attempt(None, str(exc)[:500], None, None)
        return Attempt(
            answer.status,
            None,
            _text(answer.body),
            retry_after_seconds(answer.retry_after),
        )

    async def _finish(
        self,
        job: Job,
        lease: uuid.UUID,
        attempt: Attempt,
        status: str,
        retry_in: float | None = None,
    ) -> bool:
        outcome = Outcome(
            job.id,
            lease,
            status,
            attempt.status_code,
            attempt.error,
            attempt.response,
            retry_in,
        )
        return await self._recorder.record(outcome)

    async def _record(self, job: Job, lease: uuid.UUID, attempt: Attempt) -> None:
        code = attempt.status_code
        if code is not None and 200 <= code < 300:
            if await self._finish(job, lease, attempt, "delivered"):
                DELIVERIES.labels("delivered").inc()
                with contextlib.suppress(Exception):
                    at = orjson.loads(job.payload)["timestamp"]
                    LATENCY.observe(time.time() - datetime.fromisoformat(at).timestamp())
            return
        if code == 410:
            await self._gone(job, lease, attempt)
            return
        attempts = job.attempts + 1
        delay = next_delay(self.config.schedule, attempts, attempt.retry_after)
        if delay is None:
            if await self._finish(job, lease, attempt, "failed"):
                DELIVERIES.labels("failed").inc()
                log.info("webhook_delivery_failed", delivery=str(job.id), attempts=attempts)
            return
        if await self._finish(job, lease, attempt, "pending", delay):
            refused = code is None and (attempt.error or "").startswith("refused")
            DELIVERIES.labels("refused" if refused else "retrying").inc()

    async def _gone(self, job: Job, lease: uuid.UUID, attempt: Attempt) -> None:
        """The receiver answered 410 Gone: disable the webhook and cancel what is queued.

        This delivery is cancelled with the rest, not failed: re-enabling the
        webhook sends it again, then everything after it, in order.
        """
        reason = "the receiver answered 410 Gone"
        async with self.pool.acquire() as conn, conn.transaction():
            if not await queue_repo.finish(
                conn,
                job.id,
                lease,
                status="cancelled",
                status_code=410,
                error=reason,
                response=attempt.response,
                retry_in=None,
            ):
                return
            webhook = await repo.get_webhook(conn, job.webhook_id, lock=True)
            if webhook is None or webhook.disabled_at is not None:
                return
            cancelled = await repo.disable(conn, webhook.id, reason)
            await record(
                conn,
                None,
                "webhook.disabled",
                f"webhook:{webhook.id}",
                actor="system:webhooks",
                org_id=webhook.org_id,
                app_id=webhook.app_id,
                details={"reason": reason, "cancelled_deliveries": cancelled},
            )
        DELIVERIES.labels("gone").inc()
        log.info("webhook_disabled", webhook=str(job.webhook_id), reason=reason)
