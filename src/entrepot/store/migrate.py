"""Versioned SQL migrations, applied in order under a PostgreSQL advisory lock.

Each file ``migrations/NNNN_name.sql`` runs in its own transaction, unless its
first line is ``-- entrepot:no-transaction``: then its statements run one by
one outside any transaction (``CREATE INDEX CONCURRENTLY`` and its kind), and
the version is recorded only once every statement has succeeded. Such a file
runs again from its first statement after a failure or a crash midway, so it
must be written to be re-run (``IF NOT EXISTS``, ``IF EXISTS``, ...).

The lock is taken on a dedicated connection, so replicas starting together
queue up and the later ones find nothing left to do. An applied file that
changed on disk is an error: migrations are append-only.

Every migration runs with a ``lock_timeout``: a statement that cannot have its
lock in time gives up (a waiting ``ALTER TABLE`` would queue every query on the
table behind it), and the migration is tried again after a pause, a bounded
number of times (so is one that PostgreSQL rolled back to break a deadlock);
what it waited for is logged.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg
import orjson
import structlog

from entrepot.settings import DEFAULT_MIGRATION_LOCK_ATTEMPTS, DEFAULT_MIGRATION_LOCK_TIMEOUT_MS
from entrepot.store.statements import split_statements
from entrepot.store_failures import STORE_FAILURES

log = structlog.get_logger("entrepot.migrate")

MIGRATION_LOCK_KEY = 0x656E_7472_6570_6F74 & 0x7FFF_FFFF_FFFF_FFFF  # "entrepot"
NO_TRANSACTION = "-- entrepot:no-transaction"
BACKOFF_SECONDS = 0.5  # the first pause after a lock timeout; doubled each time
MAX_BACKOFF_SECONDS = 30.0

_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
_CONCURRENT_INDEX = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r'("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)',
    re.IGNORECASE,
)


_JITTER = random.Random()  # its own: the process's global ``random`` is left alone


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def transactional(self) -> bool:
        """False when the file's first line asks for statements outside a transaction."""
        return self.sql.split("\n", 1)[0].strip() != NO_TRANSACTION


@dataclass(frozen=True)
class LockWait:
    """A migration statement that gave up waiting for a lock, and what it waited for."""

    version: int
    attempt: int
    statement: str | None  # the statement, when the file runs statement by statement
    waited_for: list[dict[str, Any]]  # the locks seen ungranted, with who held them

    def describe(self) -> str:
        if not self.waited_for:
            return "a lock (not seen in time)"
        parts = []
        for w in self.waited_for:
            what = w["relation"] or w["locktype"]
            holders = ", ".join(
                f"pid {h['pid']} ({h['application_name'] or 'no name'}, {h['state']}: "
                f"{h['query']!r})"
                for h in w["blockers"]
            )
            parts.append(f"{w['mode']} on {what}, held by {holders or 'nobody seen'}")
        return "; ".join(parts)


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("entrepot.store").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers must be 1..n without gaps, found {versions}")
    return found


class MigrationError(RuntimeError):
    pass


class MigrationLockTimeout(MigrationError):
    """A migration could not take its locks in any of its attempts."""


@dataclass(frozen=True)
class _Policy:
    lock_timeout_ms: int
    attempts: int
    backoff_seconds: float
    on_lock_timeout: Callable[[LockWait], None] | None


async def migrate(
    dsn: str,
    *,
    target: int | None = None,
    lock_timeout_ms: int = DEFAULT_MIGRATION_LOCK_TIMEOUT_MS,
    lock_attempts: int = DEFAULT_MIGRATION_LOCK_ATTEMPTS,
    backoff_seconds: float = BACKOFF_SECONDS,
    migrations: Sequence[Migration] | None = None,
    on_lock_timeout: Callable[[LockWait], None] | None = None,
) -> list[int]:
    """Bring the schema up to ``target`` (default: latest); return versions applied.

    A statement waits at most ``lock_timeout_ms`` for a lock; a migration that
    timed out is tried again ``lock_attempts`` times in all, pausing
    ``backoff_seconds`` (doubled each time, with jitter) in between.
    ``migrations`` replaces the packaged files (tests); ``on_lock_timeout``
    hears of every timeout.
    """
    if lock_timeout_ms < 1 or lock_attempts < 1:
        raise ValueError("lock_timeout_ms and lock_attempts must be at least 1")
    policy = _Policy(lock_timeout_ms, lock_attempts, backoff_seconds, on_lock_timeout)
    chain = list(migrations) if migrations is not None else available_migrations()
    conn = await asyncpg.connect(dsn)
    try:
        # Replicas queue here for as long as it takes, whatever the role's default.
        await conn.execute("SET lock_timeout = 0")
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            return await _apply_pending(conn, dsn, chain, target, policy)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(
    conn: asyncpg.Connection,
    dsn: str,
    chain: list[Migration],
    target: int | None,
    policy: _Policy,
) -> list[int]:
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS entrepot_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            checksum text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    applied = {
        r["version"]: r["checksum"]
        for r in await conn.fetch("SELECT version, checksum FROM entrepot_migrations")
    }
    pending: list[Migration] = []
    for migration in chain:
        if target is not None and migration.version > target:
            break
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version} ({migration.name}) changed after it was applied"
                )
            continue
        pending.append(migration)
    if not pending:
        return []
    done: list[int] = []
    async with _LockWatch(dsn, conn.get_server_pid(), policy.lock_timeout_ms) as watch:
        for migration in pending:
            if migration.transactional:
                run = functools.partial(_run_in_transaction, conn, migration, policy)
                await _with_retries(migration, None, policy, watch, run)
            else:
                await _run_statements(conn, migration, policy, watch)
            log.info("migration_applied", version=migration.version, name=migration.name)
            done.append(migration.version)
    return done


async def _record(conn: asyncpg.Connection, migration: Migration) -> None:
    await conn.execute(
        "INSERT INTO entrepot_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        migration.version,
        migration.name,
        migration.checksum,
    )


async def _run_in_transaction(
    conn: asyncpg.Connection, migration: Migration, policy: _Policy
) -> None:
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = {int(policy.lock_timeout_ms)}")
        await conn.execute(migration.sql)
        await _record(conn, migration)


async def _run_statements(
    conn: asyncpg.Connection, migration: Migration, policy: _Policy, watch: _LockWatch
) -> None:
    """Each statement in autocommit, each retried on its own; the version last."""
    statements = split_statements(migration.sql)
    await conn.execute(f"SET lock_timeout = {int(policy.lock_timeout_ms)}")
    try:
        for statement in statements:

            async def run(statement: str = statement) -> None:
                try:
                    await conn.execute(statement)
                except asyncpg.PostgresError:
                    await _drop_invalid_index(conn, statement)
                    raise

            await _with_retries(migration, statement, policy, watch, run)
        await _record(conn, migration)
    finally:
        await conn.execute("SET lock_timeout = 0")


async def _drop_invalid_index(conn: asyncpg.Connection, statement: str) -> None:
    """A failed ``CREATE INDEX CONCURRENTLY`` leaves its index behind, invalid, and
    ``IF NOT EXISTS`` would keep it on the next try: drop it (only if invalid)."""
    match = _CONCURRENT_INDEX.match(_LEADING_COMMENTS.sub("", statement))
    if match is None:
        return
    name = match.group(1)
    name = name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
    try:
        invalid = await conn.fetchval(
            "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(quote_ident($1))",
            name,
        )
        if invalid:
            await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quote_ident(name)}")
            log.warning("migration_invalid_index_dropped", index=name)
    except asyncpg.PostgresError as exc:  # the statement's own error is the one to report
        log.warning("migration_invalid_index_kept", index=name, error=type(exc).__name__)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _with_retries(
    migration: Migration,
    statement: str | None,
    policy: _Policy,
    watch: _LockWatch,
    run: Callable[[], Awaitable[None]],
) -> None:
    """Run ``run`` (a migration, or one of its statements) until it does not time out on a
    lock, at most ``policy.attempts`` times."""
    for attempt in range(1, policy.attempts + 1):
        watch.reset()
        try:
            await run()
            return
        except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError) as exc:
            # A deadlock is a wait that could not end: PostgreSQL rolled the migration
            # back to break it, and it is tried again like a lock timeout.
            wait = LockWait(migration.version, attempt, statement, watch.seen())
            if policy.on_lock_timeout is not None:
                policy.on_lock_timeout(wait)
            if attempt == policy.attempts:
                raise MigrationLockTimeout(
                    f"migration {migration.version} ({migration.name}) could not take its locks "
                    f"within {policy.lock_timeout_ms} ms in {policy.attempts} attempts; it waited "
                    f"for {wait.describe()}"
                ) from exc
            pause = min(MAX_BACKOFF_SECONDS, policy.backoff_seconds * 2 ** (attempt - 1))
            pause *= 0.5 + _JITTER.random() / 2  # jitter
            log.warning(
                "migration_lock_timeout",
                deadlock=isinstance(exc, asyncpg.DeadlockDetectedError),
                version=migration.version,
                name=migration.name,
                attempt=attempt,
                of=policy.attempts,
                statement=statement[:200] if statement else None,
                waited_for=wait.describe(),
                retry_in_seconds=round(pause, 3),
            )
            await asyncio.sleep(pause)


WAITING = """
SELECT l.locktype, l.relation::regclass::text AS relation, l.mode,
       coalesce((SELECT json_agg(json_build_object(
                     'pid', a.pid, 'application_name', a.application_name, 'state', a.state,
                     'query', left(a.query, 200)))
                 FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids($1))), '[]')::text
           AS blockers
FROM pg_locks l WHERE l.pid = $1 AND NOT l.granted
"""


class _LockWatch:
    """Notes, from a second connection, which lock the migrating backend waits for.

    A lock timeout says only that a statement waited too long; the watch looks at
    ``pg_locks`` while it waits, so the log can say for what, and who held it.
    Without a second connection (none left, say) migrations run all the same.
    """

    def __init__(self, dsn: str, pid: int, lock_timeout_ms: int) -> None:
        self._dsn = dsn
        self._pid = pid
        self._interval = min(1.0, max(0.01, lock_timeout_ms / 5000))
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._seen: list[dict[str, Any]] = []

    async def __aenter__(self) -> _LockWatch:
        try:
            self._conn = await asyncpg.connect(self._dsn)
        except STORE_FAILURES as exc:
            log.info("migration_lock_watch_unavailable", error=type(exc).__name__)
            return self
        self._task = asyncio.create_task(self._watch(self._conn), name="migration-lock-watch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()

    def reset(self) -> None:
        self._seen = []

    def seen(self) -> list[dict[str, Any]]:
        return list(self._seen)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        try:
            while True:
                rows = await conn.fetch(WAITING, self._pid)
                if rows:
                    self._seen = [
                        {
                            "locktype": r["locktype"],
                            "relation": r["relation"],
                            "mode": r["mode"],
                            "blockers": orjson.loads(r["blockers"]),
                        }
                        for r in rows
                    ]
                await asyncio.sleep(self._interval)
        except STORE_FAILURES as exc:
            log.info("migration_lock_watch_stopped", error=type(exc).__name__)


async def current_version(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('entrepot_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM entrepot_migrations"))
