"""SQL for the portal's sessions and its signing key.

A session is found by the SHA-256 digest of the cookie's token, and only while it
has not expired and its user is enabled, so an expired or disabled session reads as
no session at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from entrepot.store.types import Conn, Executor

SESSION_COLUMNS = "s.id, s.user_id, s.org_id, s.created_at, s.expires_at"


@dataclass(frozen=True, slots=True)
class Session:
    """A live session (``SESSION_COLUMNS``): whose it is and which org they work in."""

    id: uuid.UUID
    user_id: uuid.UUID
    org_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> Session:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class OrgRole:
    """One of a person's organisations and their role in it (for the org switcher)."""

    id: uuid.UUID
    name: str
    title: str
    role: str

    @classmethod
    def of(cls, row: asyncpg.Record) -> OrgRole:
        return cls(*row)


async def orgs_of(conn: Executor, user_id: uuid.UUID) -> list[OrgRole]:
    rows = await conn.fetch(
        "SELECT o.id, o.name, o.title, m.role FROM org_members m JOIN orgs o ON o.id = m.org_id "
        "WHERE m.user_id = $1 ORDER BY o.name",
        user_id,
    )
    return [OrgRole.of(r) for r in rows]


async def insert_session(
    conn: Conn, token_digest: bytes, user_id: uuid.UUID, org_id: uuid.UUID | None, seconds: int
) -> Session:
    row = await conn.fetchrow(
        """
        INSERT INTO portal_sessions AS s (token_digest, user_id, org_id, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4))
        RETURNING s.id, s.user_id, s.org_id, s.created_at, s.expires_at
        """,
        token_digest,
        user_id,
        org_id,
        seconds,
    )
    assert row is not None
    return Session.of(row)


async def find_session(conn: Executor, token_digest: bytes) -> Session | None:
    row = await conn.fetchrow(
        f"""
        SELECT {SESSION_COLUMNS}
        FROM portal_sessions s JOIN users u ON u.id = s.user_id
        WHERE s.token_digest = $1 AND s.expires_at > now() AND u.disabled_at IS NULL
        """,
        token_digest,
    )
    return None if row is None else Session.of(row)


async def delete_session(conn: Executor, session_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM portal_sessions WHERE id = $1", session_id)


async def delete_sessions_of(
    conn: Executor, user_id: uuid.UUID, *, keep: uuid.UUID | None = None
) -> int:
    """End a user's sessions (all but ``keep``): after a password change."""
    done = await conn.execute(
        "DELETE FROM portal_sessions WHERE user_id = $1 AND ($2::uuid IS NULL OR id <> $2)",
        user_id,
        keep,
    )
    return int(done.split()[-1])


async def delete_expired_of(conn: Executor, user_id: uuid.UUID) -> None:
    """A user's expired sessions, swept when they sign in again (no loop needed)."""
    await conn.execute(
        "DELETE FROM portal_sessions WHERE user_id = $1 AND expires_at <= now()", user_id
    )


async def set_session_org(conn: Executor, session_id: uuid.UUID, org_id: uuid.UUID) -> None:
    await conn.execute("UPDATE portal_sessions SET org_id = $2 WHERE id = $1", session_id, org_id)


async def signing_key(conn: Executor, name: str, candidate: bytes) -> bytes:
    """The platform's key called ``name``; ``candidate`` becomes it if there is none yet
    (replicas racing to make it all read the one that was stored first)."""
    await conn.execute(
        "INSERT INTO portal_keys (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        name,
        candidate,
    )
    secret: bytes = await conn.fetchval("SELECT secret FROM portal_keys WHERE name = $1", name)
    return secret


async def user_email(conn: Executor, user_id: uuid.UUID) -> str | None:
    email: str | None = await conn.fetchval("SELECT email FROM users WHERE id = $1", user_id)
    return email
