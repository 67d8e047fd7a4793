"""SQL for users and organisation memberships."""

from __future__ import annotations

import uuid

import asyncpg

from entrepot.store.types import Conn, Executor

USER_COLUMNS = (
    "id, email, password_hash, is_platform_admin, disabled_at IS NOT NULL AS disabled, created_at"
)
MEMBER_COLUMNS = "o.name AS org, m.user_id, u.email, m.role, m.created_at"


async def insert_user(
    conn: Conn, email: str, password_hash: str, *, is_platform_admin: bool
) -> asyncpg.Record:
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
    return row


async def get_user(
    conn: Executor, user_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1{suffix}", user_id)


async def find_user_by_email(conn: Executor, email: str) -> asyncpg.Record | None:
    """Served by the unique index on lower(email)."""
    return await conn.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1)", email
    )


async def set_password_hash(conn: Executor, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def set_disabled(conn: Conn, user_id: uuid.UUID, disabled: bool) -> None:
    await conn.execute(
        "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END "
        "WHERE id = $1",
        user_id,
        disabled,
    )


async def memberships(conn: Executor, user_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT o.name AS org, m.role FROM org_members m JOIN orgs o ON o.id = m.org_id "
        "WHERE m.user_id = $1 ORDER BY o.name",
        user_id,
    )


async def get_org(conn: Executor, name: str, *, lock: bool = False) -> asyncpg.Record | None:
    """The org row; ``lock`` serialises membership changes of one org (the last-owner
    rule) without blocking inserts that merely reference the org."""
    suffix = " FOR NO KEY UPDATE" if lock else ""
    return await conn.fetchrow(f"SELECT id, name FROM orgs WHERE name = $1{suffix}", name)


async def get_member(
    conn: Executor, org_id: uuid.UUID, user_id: uuid.UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""
        SELECT {MEMBER_COLUMNS}
        FROM org_members m JOIN orgs o ON o.id = m.org_id JOIN users u ON u.id = m.user_id
        WHERE m.org_id = $1 AND m.user_id = $2
        """,
        org_id,
        user_id,
    )


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
) -> list[asyncpg.Record]:
    return await conn.fetch(
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
