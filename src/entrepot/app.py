"""The ASGI application: routers, middleware and the lifespan that owns the pool."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from entrepot import __version__
from entrepot.access.endpoints import router as access_router
from entrepot.access.resolver import AccessResolver
from entrepot.access.service import AccessService
from entrepot.aio import start_loop, stop_tasks, wait_event
from entrepot.apps.endpoints import router as apps_router
from entrepot.apps.service import AppService
from entrepot.apps.usage_endpoints import router as usage_router
from entrepot.audit.endpoints import router as audit_router
from entrepot.audit.retention import maintain as maintain_audit_log
from entrepot.auditing.denials import audit_denial
from entrepot.auth.authenticate import CredentialCache, Gate
from entrepot.auth.tickets import StreamTickets
from entrepot.auth.tokens import TokenService
from entrepot.catalog.endpoints import router as catalog_router
from entrepot.catalog.usage_endpoints import router as dataset_usage_router
from entrepot.changes.compaction import compact_all
from entrepot.changes.endpoints import router as changes_router
from entrepot.changes.follow import Follower
from entrepot.changes.service import FeedService
from entrepot.changes.waiter import ChangeWaiter
from entrepot.changes.waker import FeedWaker
from entrepot.components import Components
from entrepot.cors import add_cors
from entrepot.datasets.registry import DatasetRegistry
from entrepot.direct_routes import DirectAPI, DirectRoute, direct_routes
from entrepot.errors import install_handlers
from entrepot.limits.auth_failures import AuthFailureThrottle
from entrepot.limits.endpoints import router as limits_router
from entrepot.limits.limiter import RateLimiter
from entrepot.limits.meter import UsageMeter
from entrepot.limits.plans import PlanBook
from entrepot.limits.repository import purge_usage
from entrepot.limits.service import PlanService
from entrepot.limits.sign_in import SignInThrottle
from entrepot.liveness import Heartbeat, Liveness
from entrepot.logging import configure as configure_logging
from entrepot.logging import trace_ids
from entrepot.middleware import EdgeMiddleware
from entrepot.oauth.endpoints import admin_router as signing_keys_router
from entrepot.oauth.endpoints import router as oauth_router
from entrepot.ops import tracing
from entrepot.ops.draining import drain_on_sigterm
from entrepot.ops.endpoints import router as ops_router
from entrepot.ops.lifecycle import Lifecycle
from entrepot.orgs.endpoints import router as orgs_router
from entrepot.portal import routes as portal_routes
from entrepot.portal.security import PortalKeys
from entrepot.records.bulk_endpoints import router as bulk_router
from entrepot.records.endpoints import router as records_router
from entrepot.records.idempotency import purge_expired
from entrepot.records.service import ListLimits, RecordService
from entrepot.reference import document as reference_document
from entrepot.reference import pages as reference_pages
from entrepot.reference.operations import OVERVIEW
from entrepot.settings import Settings
from entrepot.store.budget import Budget
from entrepot.store.bulk_slots import BulkSlots
from entrepot.store.notify import InvalidationListener
from entrepot.store.pool import MeteredPool, PlannedPool, create_pool, planned_share
from entrepot.store.pool_metrics import Sized, publish_budget
from entrepot.store.pool_metrics import sample_forever as sample_pools
from entrepot.streams.publisher import Publisher
from entrepot.users.endpoints import router as users_router
from entrepot.users.service import UserService
from entrepot.webhooks.endpoints import router as webhooks_router
from entrepot.webhooks.runtime import WebhookRuntime

log = structlog.get_logger("entrepot.app")

POOL_CLOSE_SECONDS = 10.0
HOUSEKEEPING_SECONDS = 600.0
OTEL_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


async def _housekeeping(pool: asyncpg.Pool, settings: Settings, heartbeat: Heartbeat) -> None:
    while True:
        heartbeat.beat()
        try:  # first at start: this month's audit partition before rows need it
            await maintain_audit_log(pool, settings.audit_retention_days)
        except Exception as exc:
            log.warning("audit_maintenance_failed", error=str(exc))
        heartbeat.beat()
        await asyncio.sleep(HOUSEKEEPING_SECONDS)
        try:
            removed = await purge_expired(pool, settings.idempotency_retention_hours)
            if removed:
                log.info("idempotency_keys_purged", count=removed)
        except Exception as exc:  # keep the loop alive through store hiccups
            log.warning("housekeeping_failed", error=str(exc))
        heartbeat.beat()
        try:
            retention = settings.change_retention_hours * 3600
            await compact_all(pool, retention, progress=heartbeat.beat)
        except Exception as exc:
            log.warning("change_compaction_failed", error=str(exc))
        heartbeat.beat()
        try:
            cutoff = datetime.now(UTC) - timedelta(days=settings.usage_retention_days)
            await purge_usage(pool, cutoff)
        except Exception as exc:
            log.warning("usage_purge_failed", error=str(exc))


async def _close_pool(pool: asyncpg.Pool) -> None:
    """Close gracefully, but never let a connection still held keep the replica from exiting."""
    try:
        async with asyncio.timeout(POOL_CLOSE_SECONDS):
            await pool.close()
    except TimeoutError:
        log.warning("pool_close_timed_out", seconds=POOL_CLOSE_SECONDS)
        pool.terminate()


def create_app(settings: Settings | None = None, *, served: bool = False) -> FastAPI:
    """The platform as an ASGI app. ``served``: the process is ``entrepot serve``'s
    worker, whose SIGTERM drains first (ops/draining.py); tests and embedders leave
    their own signal handlers alone."""
    settings = settings or Settings()
    if not settings.database_url:
        raise RuntimeError("create_app needs ENTREPOT_DATABASE_URL; `entrepot serve` sets it.")
    dsn = settings.database_url
    direct = settings.direct_url() or dsn  # LISTEN needs the server, never a pooler

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.opentelemetry:
            tracing.start()
            trace_ids(True)
        parts = Components()
        app.state.components = parts  # the one attribute: everything else is found by type
        parts.provide(settings)
        lifecycle = parts.provide(Lifecycle())
        request_pool = await create_pool(settings, dsn)
        pool = parts.provide(request_pool, asyncpg.Pool)
        bulk_pool = await create_pool(
            settings, dsn, size=settings.bulk_pool_size, name="entrepot-bulk"
        )
        pools: list[Sized] = [request_pool, bulk_pool]
        planned_pool: MeteredPool | None = None
        if planned_share(settings):
            planned_pool = await create_pool(settings, dsn, name="entrepot-planned", planned=True)
            parts.provide(PlannedPool(planned_pool))
            pools.append(planned_pool)
        pool_gauges = start_loop(sample_pools(pools), "pools")
        budget = Budget.of(settings, workers=1)
        publish_budget(budget.direct_per_replica, budget.through_pooler_per_replica)
        parts.provide(
            BulkSlots(
                bulk_pool,
                per_caller=settings.bulk_per_caller,
                queue_seconds=settings.bulk_queue_seconds,
            )
        )
        credentials = parts.provide(CredentialCache(settings.credential_cache_seconds))
        registry = parts.provide(DatasetRegistry(pool, settings.catalog_cache_seconds))
        access = parts.provide(AccessResolver(pool, registry, settings.credential_cache_seconds))
        tokens = parts.provide(
            TokenService(
                pool,
                issuer=settings.token_issuer(),
                audience=settings.token_audience,
                ttl=settings.access_token_ttl_seconds,
            )
        )
        await tokens.ensure_signing_key()
        parts.provide(StreamTickets(tokens, settings.stream_ticket_seconds))
        liveness = parts.provide(
            Liveness(lag=settings.liveness_lag_seconds, grace=settings.liveness_grace_seconds)
        )
        waiter = ChangeWaiter(direct, liveness)
        waiter.start()
        feed_waker = parts.provide(FeedWaker(pool, waiter, liveness))
        feed_waker.start()
        parts.provide(
            RecordService(
                registry,
                access,
                ListLimits(settings.unindexed_scan_rows, settings.list_timeout_ms / 1000),
                changed=feed_waker.changed,
            )
        )
        parts.provide(
            AppService(
                max_overlap_seconds=settings.key_rotation_max_overlap_seconds,
                forget_principals=credentials.clear,
            )
        )
        plan_book = PlanBook(pool)
        parts.provide(PlanService(on_change=plan_book.invalidate))
        redis = None
        if settings.redis_url:
            from redis.asyncio import Redis

            redis = parts.provide(
                Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
            )
        limiter = parts.provide(RateLimiter(pool, plan_book, redis))
        failures = parts.provide(
            AuthFailureThrottle(
                pool, settings.auth_failures_per_second, settings.auth_failures_burst
            )
        )
        parts.provide(Gate(pool, tokens, credentials, failures, limiter, settings.anonymous_reads))
        parts.provide(
            UserService(
                tokens,
                forget_principals=credentials.clear,
                sign_in_throttle=SignInThrottle(limiter, settings),
            )
        )
        for cache in (credentials, access, registry, tokens, plan_book):
            cache.subscribe(parts)

        parts.provide(AccessService(access))
        parts.provide(PortalKeys(pool))
        feed = parts.provide(FeedService(access))
        parts.provide(Follower(pool, feed, waiter, lifecycle))
        lifecycle.on_stop(waiter.wake_all)
        webhooks = parts.provide(
            WebhookRuntime.started(pool, feed, waiter, direct, settings, liveness)
        )
        parts.provide(webhooks.service)
        lifecycle.report("webhooks", webhooks.health)
        publisher = None
        if settings.nats_url:  # the feeds into JetStream (docs/jetstream.md)
            publisher = Publisher.from_settings(settings, pool, feed, registry, waiter, liveness)
            publisher.start()

        listener = InvalidationListener(direct, parts.invalidate, liveness)
        listener.start()
        await wait_event(listener.connected, 5)
        meter = parts.provide(
            UsageMeter(
                pool,
                settings.usage_flush_seconds,
                after_flush=lambda now: limiter.quotas.refresh(pool, now),
                liveness=liveness,
            )
        )
        meter.start()
        housekeeping = liveness.register("housekeeping", HOUSEKEEPING_SECONDS)
        task = start_loop(_housekeeping(pool, settings, housekeeping), "housekeeping")
        liveness.start()
        log.info("started", pid=os.getpid(), version=__version__)
        draining = (
            drain_on_sigterm(lifecycle, settings.drain_seconds)
            if served
            else contextlib.nullcontext()
        )
        try:
            with draining:
                yield
        finally:
            lifecycle.stop_serving()
            liveness.stop()  # the event loop's watch; each loop unregisters as it stops
            if publisher is not None:
                await publisher.stop()
            await webhooks.stop()
            await listener.stop()
            await feed_waker.stop()
            await waiter.stop()
            liveness.unregister(housekeeping)
            await stop_tasks([task, pool_gauges])
            await meter.stop()
            if redis is not None:
                await redis.aclose()
            await _close_pool(bulk_pool)
            if planned_pool is not None:
                await _close_pool(planned_pool)
            await _close_pool(pool)
            log.info("stopped", pid=os.getpid())
            if settings.opentelemetry:
                trace_ids(False)
                tracing.stop()

    app = DirectAPI(
        title="Entrepot",
        version=__version__,
        description=OVERVIEW,
        lifespan=lifespan,
        # Served by entrepot.reference.pages from vendored assets: no CDN, works offline.
        docs_url=None,
        redoc_url=None,
        # Off unless asked for: even unconfigured, FastAPI's OpenTelemetry hook looks up
        # three providers in the environment on every request (~18 us each request here).
        telemetry=None if settings.opentelemetry else OTEL_OFF,
        # Matched first, served without the dependency solver; declared (and documented)
        # below like every other route.
        routes=direct_routes([records_router, bulk_router]),
    )
    install_handlers(app, on_denial=audit_denial)
    app.include_router(ops_router)
    app.include_router(orgs_router)
    app.include_router(catalog_router)
    app.include_router(apps_router)
    app.include_router(audit_router)
    app.include_router(oauth_router)
    app.include_router(signing_keys_router)
    app.include_router(users_router)
    app.include_router(access_router)
    app.include_router(records_router)
    app.include_router(changes_router)
    app.include_router(webhooks_router)
    app.include_router(bulk_router)
    app.include_router(limits_router)
    app.include_router(usage_router)
    app.include_router(dataset_usage_router)
    reference_pages.include(app)
    # /portal: pages, not API operations. Matched right after the direct routes (which
    # DirectDispatch serves first anyway): a page never walks the API's included routes
    # (FastAPI builds each one's context on its first walk, ~0.3 s).
    first_declared = sum(isinstance(route, DirectRoute) for route in app.router.routes)
    app.router.routes.insert(first_declared, portal_routes.mount())
    reference_document.install(app)
    if origins := settings.cors_origin_list():
        add_cors(app, origins)  # inside the edge: its answers logged too
    app.add_middleware(
        EdgeMiddleware,
        max_body=settings.max_body_bytes,
        max_import_body=settings.max_import_bytes,
    )
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (used by ``entrepot serve`` workers)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, served=True)
