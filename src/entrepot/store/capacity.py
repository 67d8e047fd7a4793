"""The start-up check: refuse to serve when PostgreSQL cannot hold the connection budget.

``entrepot serve`` (the parent, once, before migrating) reads what the server,
the role and the database allow and what is in use, and stops with one line
when the replica's budget (store/budget.py) does not fit in what is free:
better than workers failing with TooManyConnectionsError under the first load.

Three limits apply to a connection: ``max_connections`` less the slots reserved
for superusers (and, on PostgreSQL 16, ``reserved_connections``), the role's
CONNECTION LIMIT and the database's; the last two do not hold for superusers.
In use is every client session but the check's own. A role that may not see
other roles' sessions (no ``pg_read_all_stats``) sees them without their kind, so
it counts every session that has a role and a database: background workers of
other roles too (an overestimate, never an underestimate).

Through a transaction pooler only the dedicated connections reach the server:
the check counts those, and names the pooled ones in a log line (the pooler's
own limits are its configuration, which the app cannot read). It also asks,
through the pooler, which statement timeout the pooled sessions run with: it
cannot be sent as a startup parameter there, so it is the role's or the
database's, and a warning names the statement to run when it differs.

Two replicas starting at the same moment may both see room for one of them:
the check is a guard against a budget that cannot fit, not a reservation.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import structlog

from entrepot.dsn import describe_hosts
from entrepot.settings import Settings
from entrepot.store.budget import Budget
from entrepot.store.pool import IDLE_IN_TRANSACTION_MS

log = structlog.get_logger("entrepot.store")

ROOM = """
SELECT current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int
         + coalesce(current_setting('reserved_connections', true), '0')::int,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
       current_user::text,
       (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user),
       current_database()::text,
       (SELECT datconnlimit FROM pg_database WHERE datname = current_database()),
       count(*),
       count(*) FILTER (WHERE usename = current_user),
       count(*) FILTER (WHERE datname = current_database())
FROM pg_stat_activity
WHERE pid <> pg_backend_pid()
  AND (backend_type = 'client backend'
       OR (backend_type IS NULL AND datid IS NOT NULL AND usesysid IS NOT NULL))
"""


class ConnectionBudgetExceeded(RuntimeError):
    """The budget does not fit; the message is the one line ``serve`` ends with."""


@dataclass(frozen=True, slots=True)
class Limit:
    what: str  # the server, role "app", database "entrepot"
    allowed: int
    in_use: int
    detail: str  # how ``allowed`` is made

    @property
    def free(self) -> int:
        return max(0, self.allowed - self.in_use)


@dataclass(frozen=True, slots=True)
class Room:
    """What the server, the role and the database allow, and what each has in use."""

    max_connections: int
    reserved: int
    superuser: bool
    role: str
    role_limit: int  # -1: none
    database: str
    database_limit: int  # -1: none
    in_use: int
    role_in_use: int
    database_in_use: int

    def limits(self) -> list[Limit]:
        if self.superuser:
            server = Limit(
                "the server", self.max_connections, self.in_use, "max_connections, as superuser"
            )
            return [server]  # the role's and database's limits do not hold for superusers
        allowed = self.max_connections - self.reserved
        detail = f"max_connections {self.max_connections} less {self.reserved} reserved"
        limits = [Limit("the server", allowed, self.in_use, detail)]
        if self.role_limit >= 0:
            limits.append(
                Limit(f'role "{self.role}"', self.role_limit, self.role_in_use, "CONNECTION LIMIT")
            )
        if self.database_limit >= 0:
            limits.append(
                Limit(
                    f'database "{self.database}"',
                    self.database_limit,
                    self.database_in_use,
                    "CONNECTION LIMIT",
                )
            )
        return limits

    def tightest(self) -> Limit:
        return min(self.limits(), key=lambda limit: limit.free)


def refusal(budget: Budget, room: Room, where: str) -> str | None:
    """The line ``serve`` stops with when ``budget`` does not fit in ``room``, else None."""
    need = budget.direct_per_replica
    limit = room.tightest()
    if need <= limit.free:
        return None
    change = (
        "lower ENTREPOT_WORKERS"
        if budget.pooler == "transaction"
        else "lower ENTREPOT_POOL_MAX_SIZE, ENTREPOT_BULK_POOL_SIZE or ENTREPOT_WORKERS, put "
        "a transaction pooler in front (ENTREPOT_POOLER)"
    )
    return (
        f"the connection budget does not fit: this replica may open {need} connections to "
        f"PostgreSQL at {where} ({budget.formula()}) but {limit.what} has {limit.free} free "
        f"({limit.allowed} allowed: {limit.detail}; {limit.in_use} in use); {change}, or "
        "make room; ENTREPOT_CONNECTION_CHECK=false skips this check"
    )


async def read_room(dsn: str) -> Room:
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "entrepot-check"})
    try:
        row = await conn.fetchrow(ROOM)
    finally:
        await conn.close()
    assert row is not None
    return Room(*row)


TIMEOUTS = """
SELECT current_setting('statement_timeout'),
       (SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout'),
       (SELECT setting::int FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout')
"""


async def check_pooled_timeouts(settings: Settings, pooled_dsn: str) -> None:
    """Warn when the pooled sessions' timeouts are not the ones serve would have set."""
    conn = await asyncpg.connect(pooled_dsn, statement_cache_size=0)
    try:
        row = await conn.fetchrow(TIMEOUTS)
    finally:
        await conn.close()
    assert row is not None
    shown, statement_ms, idle_ms = row
    if statement_ms != settings.statement_timeout_ms or idle_ms != IDLE_IN_TRANSACTION_MS:
        log.warning(
            "pooled_timeouts_differ",
            statement_timeout=shown,
            expected_ms=settings.statement_timeout_ms,
            idle_in_transaction_ms=idle_ms,
            fix=f"ALTER ROLE <role> SET statement_timeout = {settings.statement_timeout_ms}; "
            f"ALTER ROLE <role> SET idle_in_transaction_session_timeout = "
            f"{IDLE_IN_TRANSACTION_MS} (or ALTER DATABASE)",
        )


async def check(settings: Settings, dsn: str, workers: int | None = None) -> Limit | None:
    """Refuse (``ConnectionBudgetExceeded``) when the replica's budget cannot fit on the
    server ``dsn`` reaches (the direct URL); else the tightest limit (None: not checked)."""
    budget = Budget.of(settings, workers)
    if not settings.connection_check:
        log.info("connection_check_skipped", reason="ENTREPOT_CONNECTION_CHECK=false")
        return None
    room = await read_room(dsn)
    line = refusal(budget, room, describe_hosts(dsn))
    if line is not None:
        raise ConnectionBudgetExceeded(line)
    limit = room.tightest()
    log.info(
        "connection_budget",
        direct=budget.direct_per_replica,
        free=limit.free,
        tightest=limit.what,
        per_worker=budget.per_worker,
        workers=budget.workers,
    )
    if budget.pooler == "transaction":
        log.info(
            "connection_check_pooler",
            through_pooler=budget.through_pooler_per_replica,
            reason="the pooler's limits are its own configuration: its max_client_conn must "
            "hold this many client connections for every replica",
        )
    return limit
