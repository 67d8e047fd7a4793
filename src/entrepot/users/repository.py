"""SQL for users and organisation memberships.

Rows come back as the frozen dataclasses below (:class:`User`, :class:`Member`...),
never as string-keyed records; each is built from its columns by position, in one place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from entrepot.principal import Role
from entrepot.store.types import Conn, Executor

USER_COLUMNS = (
    "id, email, password_hash, is_platform_admin, disabled_at IS NOT NULL AS disabled, created_at"
)
MEMBER_COLUMNS = "o.name AS org, m.user_id, u.email, m.role, m.created_at"


@dataclass(frozen=True, slots=True)
class User:
    """A user (``USER_COLUMNS``); ``password_hash`` is None for one who cannot log in."""

    id: uuid.UUID
    email: str
    password_hash: str | None
    is_platform_admin: bool
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> User:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class Membership:
    """One of a user's organisations, by name, and the user's role in it."""

    org: str
    role: Role

    @classmethod
    def of(cls, row: asyncpg.Record) -> Membership:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class OrgRef:
    id: uuid.UUID
    name: str

    @classmethod
    def of(cls, row: asyncpg.Record) -> OrgRef:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class Member:
    """A membership (``MEMBER_COLUMNS``), with its org's name and its user's email."""

    org: str
    user_id: uuid.UUID
    email: str
    role: Role
    created_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> Member:
        return cls(*row)


async def insert_user(
    conn: Conn, email: str, password_hash: str, *, is_platform_admin: bool
) -> User:
    row = await conn.fetchrow(
        f"""
        INSERT INTO users (email, password_hash, is_platform_admin) VALUES ($1, $2, $3)
        RETURNING {USER_COLUMNS}
        """,
        email,
        password_hash,
        is_platform_admin,
    )
    assert row is not None
    return User.of(row)


async def get_user(conn: Executor, user_id: uuid.UUID, *, lock: bool = False) -> User | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1{suffix}", user_id)
    return None if row is None else User.of(row)


async def list_users(conn: Executor, *, after: str | None, limit: int) -> list[User]:
    """Users in email order, after ``after`` (keyset: an email is unique)."""
    rows = await conn.fetch(
        f"SELECT {USER_COLUMNS} FROM users WHERE ($1::text IS NULL OR email > $1) "
        "ORDER BY email LIMIT $2",
        after,
        limit,
    )
    return [User.of(r) for r in rows]


async def find_user_by_email(conn: Executor, email: str) -> User | None:
    """Served by the unique index on lower(email)."""
    row = await conn.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1)", email
    )
    return None if row is None else User.of(row)


async def any_user(conn: Executor) -> bool:
    """Whether anyone has an account yet (the portal's first-run set-up needs none)."""
    found: bool = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)")
    return found


async def set_password_hash(conn: Executor, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def set_disabled(conn: Conn, user_id: uuid.UUID, disabled: bool) -> None:
    await conn.execute(
        "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END "
        "WHERE id = $1",
        user_id,
        disabled,
    )


async def memberships(conn: Executor, user_id: uuid.UUID) -> list[Membership]:
    rows = await conn.fetch(
        "SELECT o.name AS org, m.role FROM org_members m JOIN orgs o ON o.id = m.org_id "
        "WHERE m.user_id = $1 ORDER BY o.name",
        user_id,
    )
    return [Membership.of(r) for r in rows]


async def get_org(conn: Executor, name: str, *, lock: bool = False) -> OrgRef | None:
    """The org row; ``lock`` serialises membership changes of one org (the last-owner
    rule) without blocking inserts that merely reference the org."""
    suffix = " FOR NO KEY UPDATE" if lock else ""
    row = await conn.fetchrow(f"SELECT id, name FROM orgs WHERE name = $1{suffix}", name)
    return None if row is None else OrgRef.of(row)


async def get_member(conn: Executor, org_id: uuid.UUID, user_id: uuid.UUID) -> Member | None:
    row = await conn.fetchrow(
        f"""
        SELECT {MEMBER_COLUMNS}
        FROM org_members m JOIN orgs o ON o.id = m.org_id JOIN users u ON u.id = m.user_id
        WHERE m.org_id = $1 AND m.user_id = $2
        """,
        org_id,
        user_id,
    )
    return None if row is None else Member.of(row)


async def upsert_member(conn: Conn, org_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
    await conn.execute(
        """
        INSERT INTO org_members (org_id, user_id, role) VALUES ($1, $2, $3)
        ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role
        """,
        org_id,
        user_id,
        role,
    )


async def delete_member(conn: Conn, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await conn.execute(
        "DELETE FROM org_members WHERE org_id = $1 AND user_id = $2", org_id, user_id
    )


async def count_owners(conn: Conn, org_id: uuid.UUID) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM org_members WHERE org_id = $1 AND role = 'owner'", org_id
    )
    return count


async def list_members(
    conn: Executor, org_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
) -> list[Member]:
    rows = await conn.fetch(
        f"""
        SELECT {MEMBER_COLUMNS}
        FROM org_members m JOIN orgs o ON o.id = m.org_id JOIN users u ON u.id = m.user_id
        WHERE m.org_id = $1 AND ($2::uuid IS NULL OR m.user_id > $2)
        ORDER BY m.user_id LIMIT $3
        """,
        org_id,
        after,
        limit,
    )
    return [Member.of(r) for r in rows]
