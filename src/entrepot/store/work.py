"""A request's unit of work: one connection, at most one transaction, and what follows it.

The request edge opens it, hands it to the service, and ends it: services
read and write through ``work.conn`` and never commit. What must happen only
once the change is durable is registered on the unit and released by the
edge after the commit, never on a rollback:

- ``announce(topic)``: tell every replica to drop a cache (NOTIFY, sent after
  the commit, so no write transaction ever holds PostgreSQL's global notify
  lock; a replica that misses one still drops its cache within its TTL);
- ``after_commit(effect)``: anything else local (forget this replica's
  caches, wake the feed's readers, start a job).

:class:`Reads` is the same without a transaction, for requests that only
read: one connection for the request, statements in autocommit.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from entrepot.store.notify import CHANNEL
from entrepot.store.types import Conn
from entrepot.store_failures import STORE_FAILURES

log = structlog.get_logger("entrepot.store")

Effect = Callable[[], Awaitable[None] | None]


PLAN_FOR_VALUES = "SET LOCAL plan_cache_mode = force_custom_plan"


async def plan_for_values(conn: Conn) -> None:
    """Plan the rest of ``conn``'s transaction for each statement's own values.

    PostgreSQL caches the plans of prepared statements, and after five runs may
    keep a generic one that ignores the values: right for the statements whose best
    plan never depends on them (a read by primary key, a write), wrong for a list
    whose filter is selective for one value and not for another (bench/RESULTS.md:
    a range filter walked the primary key, 29 ms instead of 1.7 ms). Transaction-
    local, so no session state outlives the unit (and a transaction-mode pooler
    keeps working)."""
    await conn.execute(PLAN_FOR_VALUES)


@dataclass
class Reads:
    """One connection for a request that only reads."""

    conn: Conn
    # Every statement on ``conn`` is planned for its values already (a connection of
    # the planned pool, store/pool.py: PlannedPool).
    planned: bool = False

    def planned_for_values(self) -> AbstractAsyncContextManager[None]:
        """A block whose statements are planned for their values (``plan_for_values``):
        as they are on a planned connection, else in a read-only transaction of their
        own, on this connection."""
        return nullcontext() if self.planned else _PlannedForValues(self.conn)

    def begin(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """The request's unit of work, begun late on its connection: for a use case
        whose slow part runs first, outside any transaction (an online schema change,
        a password hash). Commits when the block returns, rolls back when it raises."""
        return within(self)


@dataclass
class UnitOfWork(Reads):
    """One connection inside one transaction, plus the effects of its commit."""

    _effects: list[Effect] = field(default_factory=list)
    _topics: list[str] = field(default_factory=list)
    _transaction: Transaction | None = None

    @property
    def in_transaction(self) -> bool:
        return self._transaction is not None

    async def begin_transaction(self) -> None:
        """Begin the unit's transaction now, if it has not begun.

        A unit opened lazily (``unit_of_work(pool, lazy=True)``: the ``LazyWork``
        dependency) runs its statements in autocommit until the use case asks for
        this: a use case whose common path is one statement (a record write, which
        locks, writes, appends its change and its audit row at once) then costs one
        round trip instead of three, with the same atomicity. Anything that must hold
        a lock across statements, or write more than once, begins first.
        """
        if self._transaction is None:
            transaction = self.conn.transaction()
            await transaction.start()
            self._transaction = transaction

    def planned_for_values(self) -> AbstractAsyncContextManager[None]:
        """The unit's transaction, begun now if it has not, planned for values from here."""
        return _PlannedInUnit(self)

    def after_commit(self, effect: Effect) -> None:
        self._effects.append(effect)

    def announce(self, topic: str) -> None:
        if topic not in self._topics:
            self._topics.append(topic)

    async def _release(self) -> None:
        """Run the effects of a commit (the connection is still ours, out of the
        transaction); a failing one is logged, never undoes the commit."""
        for effect in self._effects:
            try:
                done = effect()
                if inspect.isawaitable(done):
                    await done
            except Exception as exc:
                log.warning("after_commit_failed", error=f"{type(exc).__name__}: {exc}")
        if self._topics:
            try:
                await self.conn.execute(
                    "SELECT pg_notify($1, topic) FROM unnest($2::text[]) AS topic",
                    CHANNEL,
                    self._topics,
                )
            except STORE_FAILURES as exc:
                log.warning("announce_failed", topics=self._topics, error=type(exc).__name__)


class _PlannedForValues:
    """A read-only transaction begun and planned in one round trip (one simple-query
    message of two statements), or the caller's transaction planned."""

    __slots__ = ("_began", "_conn")

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        self._began = False

    async def __aenter__(self) -> None:
        if self._conn.is_in_transaction():
            await plan_for_values(self._conn)
            return
        await self._conn.execute(f"BEGIN READ ONLY; {PLAN_FOR_VALUES}")
        self._began = True

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if not self._began:
            return
        self._began = False
        await self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


class _PlannedInUnit:
    __slots__ = ("_work",)

    def __init__(self, work: UnitOfWork) -> None:
        self._work = work

    async def __aenter__(self) -> None:
        await self._work.begin_transaction()
        await plan_for_values(self._work.conn)

    async def __aexit__(self, *_: object) -> None:
        return None  # the unit's transaction ends with the unit


class _Reading:
    """``reads(pool)``: a connection for the request, back to the pool at the end.

    Classes rather than generator-based context managers, here and below: one is
    entered on every request, and a generator costs extra frames and a wrapper."""

    __slots__ = ("_conn", "_planned", "_pool")

    def __init__(self, pool: asyncpg.Pool, planned: bool = False) -> None:
        self._pool = pool
        self._planned = planned
        self._conn: PoolConnectionProxy | None = None

    async def __aenter__(self) -> Reads:
        self._conn = await self._pool.acquire()
        return Reads(self._conn, self._planned)

    async def __aexit__(self, *exc_info: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)


def reads(pool: asyncpg.Pool) -> AbstractAsyncContextManager[Reads]:
    return _Reading(pool)


def planned_reads(pool: asyncpg.Pool) -> AbstractAsyncContextManager[Reads]:
    """``reads`` on a connection of the planned pool (``Reads.planned``)."""
    return _Reading(pool, planned=True)


class _Within:
    """``within(reads)``: commit when the block returns, roll back when it raises;
    then release the effects (after a commit only)."""

    __slots__ = ("_conn", "_lazy", "_work")

    def __init__(self, conn: Conn, lazy: bool) -> None:
        self._conn = conn
        self._lazy = lazy
        self._work: UnitOfWork | None = None

    async def __aenter__(self) -> UnitOfWork:
        work = self._work = UnitOfWork(self._conn)
        if not self._lazy:
            await work.begin_transaction()
        return work

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        work, self._work = self._work, None
        assert work is not None
        if exc_type is not None:
            if work._transaction is not None:
                await work._transaction.rollback()
            return  # the exception goes on
        if work._transaction is not None:
            await work._transaction.commit()
        await work._release()


class _Unit:
    """``unit_of_work(pool)``: a pooled connection, and a unit of work (``_Within``) on it."""

    __slots__ = ("_conn", "_lazy", "_pool", "_within")

    def __init__(self, pool: asyncpg.Pool, lazy: bool) -> None:
        self._pool = pool
        self._lazy = lazy
        self._conn: PoolConnectionProxy | None = None
        self._within: _Within | None = None

    async def __aenter__(self) -> UnitOfWork:
        conn: PoolConnectionProxy = await self._pool.acquire()
        within = _Within(conn, self._lazy)
        try:
            work = await within.__aenter__()
        except BaseException:
            await self._pool.release(conn)
            raise
        self._conn, self._within = conn, within
        return work

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        conn, within = self._conn, self._within
        self._conn = self._within = None
        assert conn is not None
        assert within is not None
        try:
            await within.__aexit__(exc_type, *rest)
        finally:
            await self._pool.release(conn)


def unit_of_work(
    pool: asyncpg.Pool, *, lazy: bool = False
) -> AbstractAsyncContextManager[UnitOfWork]:
    """Commit when the body returns, roll back when it raises; then release the effects.
    ``lazy``: the transaction begins only when the use case asks (``begin_transaction``)."""
    return _Unit(pool, lazy)


def lazy_unit_of_work(pool: asyncpg.Pool) -> AbstractAsyncContextManager[UnitOfWork]:
    return _Unit(pool, True)


def within(reads: Reads, *, lazy: bool = False) -> AbstractAsyncContextManager[UnitOfWork]:
    """A unit of work on a connection the request already holds (``Reads.begin``)."""
    return _Within(reads.conn, lazy)


class Units:
    """Units opened on demand, for a use case whose slow part must hold no connection
    at all (a password verification): each ``reads()``/``work()`` is one short unit."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def reads(self) -> AbstractAsyncContextManager[Reads]:
        return reads(self._pool)

    def work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(self._pool)
