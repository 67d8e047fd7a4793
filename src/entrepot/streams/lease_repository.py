"""SQL for the publisher's lease: one row per lease, its holder, term and expiry.

Expiry is judged by PostgreSQL's clock alone (``now()``), so replicas whose own
clocks disagree still agree on who holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from entrepot.store.types import Executor


@dataclass(frozen=True, slots=True)
class LeaseRow:
    name: str
    holder: str
    term: int
    expires_at: datetime

    @classmethod
    def of(cls, record: asyncpg.Record) -> LeaseRow:
        return cls(*record)


async def take(conn: Executor, name: str, holder: str, seconds: float) -> int | None:
    """Take the lease if it is free, expired or already ours: its term (a new one when
    it changes hands), or None while another holder's is running."""
    term: int | None = await conn.fetchval(
        """
        INSERT INTO publisher_leases AS l (name, holder, term, expires_at)
        VALUES ($1, $2, 1, now() + make_interval(secs => $3))
        ON CONFLICT (name) DO UPDATE SET
            holder = excluded.holder,
            term = CASE WHEN l.holder = excluded.holder THEN l.term ELSE l.term + 1 END,
            expires_at = excluded.expires_at,
            acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE now() END
        WHERE l.holder = excluded.holder OR l.expires_at < now()
        RETURNING term
        """,
        name,
        holder,
        float(seconds),
    )
    return term


async def renew(conn: Executor, name: str, holder: str, term: int, seconds: float) -> bool:
    """Extend our lease; False if it is no longer ours (expired and taken, or a new term)."""
    status: str = await conn.execute(
        """
        UPDATE publisher_leases SET expires_at = now() + make_interval(secs => $4)
        WHERE name = $1 AND holder = $2 AND term = $3 AND expires_at >= now()
        """,
        name,
        holder,
        term,
        float(seconds),
    )
    return status == "UPDATE 1"


async def release(conn: Executor, name: str, holder: str, term: int) -> None:
    """Give the lease up at once (a replica stopping on purpose): the next taker need
    not wait for it to expire."""
    await conn.execute(
        "UPDATE publisher_leases SET expires_at = now() - interval '1 second' "
        "WHERE name = $1 AND holder = $2 AND term = $3",
        name,
        holder,
        term,
    )


async def current(conn: Executor, name: str) -> LeaseRow | None:
    row = await conn.fetchrow(
        "SELECT name, holder, term, expires_at FROM publisher_leases WHERE name = $1", name
    )
    return None if row is None else LeaseRow.of(row)
