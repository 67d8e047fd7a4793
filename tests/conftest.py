"""Test fixtures: a real PostgreSQL (the local service, else an embedded one),
a fresh database per run with migrations applied once, and the app served
in-process over ASGI. Redis is real too; in CI a missing service fails.

``ENTREPOT_TEST_PGBOUNCER=host:port`` (a PgBouncer in transaction mode in front
of that PostgreSQL; tests/pgbouncer starts one and runs suites so) makes the
session's app reach its pools through it, as ``ENTREPOT_POOLER=transaction``
with the server itself as ``ENTREPOT_DIRECT_DATABASE_URL``; ``database_url``,
which tests use for their own checks, stays the server's."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from entrepot.app import create_app
from entrepot.auth.bootstrap import bootstrap
from entrepot.logging import configure as configure_logging
from entrepot.settings import Settings
from entrepot.store.embedded import start_embedded, with_database
from entrepot.store.migrate import migrate

ADMIN_TOKEN = "test-admin-" + uuid.uuid4().hex
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
IN_CI = bool(os.environ.get("CI"))
PGBOUNCER = os.environ.get("ENTREPOT_TEST_PGBOUNCER")
configure_logging("warning", "console")
# The sync targets' locations (`mirror`, over SQLite, PostgreSQL and MariaDB) and the MariaDB.
pytest_plugins = ["tests.mirrors"]


def _answers(url: str) -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A superuser URL: ENTREPOT_TEST_POSTGRES_URL, the local service, or embedded.

    ``ENTREPOT_TEST_POSTGRES_URL=embedded`` forces the embedded server.
    """
    given = os.environ.get("ENTREPOT_TEST_POSTGRES_URL")
    if given == "embedded":
        return start_embedded(Path(tmp_path_factory.mktemp("embedded")))
    if given:
        if not _answers(given):
            pytest.fail(f"ENTREPOT_TEST_POSTGRES_URL={given} does not answer")
        return given
    if _answers(LOCAL_POSTGRES):
        return LOCAL_POSTGRES
    if IN_CI:
        pytest.fail("CI is set but no PostgreSQL answers at 127.0.0.1:5432")
    return start_embedded(Path(tmp_path_factory.mktemp("embedded")))


async def _create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def fresh_database(pg_admin_url: str) -> Iterator[object]:
    """A factory of empty databases, all dropped at the end of the session."""
    created: list[str] = []

    async def make(prefix: str = "entrepot_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        created.append(name)
        return await _create_database(pg_admin_url, name)

    yield make
    for name in created:
        asyncio.run(_drop_database(pg_admin_url, name))


async def prepared_database(fresh_database: object) -> str:
    """A new database, migrated, with the test admin key bootstrapped."""
    url: str = await fresh_database()  # type: ignore[operator]
    await migrate(url)
    await bootstrap(url, ADMIN_TOKEN)
    return url


@asynccontextmanager
async def app_and_client(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app of a test's own (started), and an admin client talking to it in-process."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as client:
            yield application, client


@pytest.fixture(scope="session")
async def database_url(fresh_database: object) -> str:
    url = await prepared_database(fresh_database)
    # Suites hammer the API far faster than any real client; the rate limit
    # tests assign plans of their own.
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE plans SET rate_per_second = 1000000, burst = 1000000 WHERE name = 'default'"
        )
        if PGBOUNCER:  # what a pooler cannot carry as startup parameters (docs/operations.md)
            database = await conn.fetchval("SELECT current_database()")
            for name, value in pooled_timeouts().items():
                await conn.execute(f'ALTER DATABASE "{database}" SET {name} = {value}')
    finally:
        await conn.close()
    return url


def pooled_timeouts() -> dict[str, int]:
    """The timeouts serve sets by default, which a pooler's sessions take from the database."""
    from entrepot.store.pool import IDLE_IN_TRANSACTION_MS

    default: int = Settings.model_fields["statement_timeout_ms"].default
    return {
        "statement_timeout": default,
        "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION_MS,
    }


def _through_pgbouncer(database_url: str) -> dict[str, str]:
    if not PGBOUNCER:
        return {"database_url": database_url}
    from tests.pgbouncer.bouncer import via

    return {
        "database_url": via(database_url, PGBOUNCER),
        "direct_database_url": database_url,
        "pooler": "transaction",
    }


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        **_through_pgbouncer(database_url),
        bootstrap_token=ADMIN_TOKEN,
        log_level="warning",
        max_body_bytes=256 * 1024,
        # The suites send thousands of bad credentials from one address on purpose.
        auth_failures_burst=10_000_000,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as c:
        yield c


@pytest.fixture(scope="session")
async def anon(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
def redis_url() -> str:
    given = os.environ.get("ENTREPOT_TEST_REDIS_URL") or LOCAL_REDIS
    import redis

    try:
        redis.Redis.from_url(given, socket_timeout=2).ping()
    except redis.RedisError as exc:
        if IN_CI or os.environ.get("ENTREPOT_TEST_REDIS_URL"):
            pytest.fail(f"Redis at {given} does not answer: {exc}")
        pytest.skip(f"no Redis at {given}: Redis-backed tests skipped")
    return given
