"""SQL for applications and their API keys.

Rows come back as :class:`App`, :class:`ClientApp` and :class:`ApiKey`, never as
string-keyed records; each is built from its columns by position, in one place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from entrepot.store.types import Conn, Executor

APP_COLUMNS = """
    a.id, o.name AS org, a.org_id, a.name, a.description, a.client_id, a.redirect_uris,
    a.scopes, a.plan, a.disabled_at IS NOT NULL AS disabled, a.created_at
"""
KEY_COLUMNS = "id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at"


@dataclass(frozen=True, slots=True)
class App:
    """An application (``APP_COLUMNS``), with its organisation's name."""

    id: uuid.UUID
    org: str
    org_id: uuid.UUID
    name: str
    description: str
    client_id: str
    redirect_uris: list[str]
    scopes: list[str]
    plan: str
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> App:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class ClientApp(App):
    """An application found by its client id, with the digest its secret must match."""

    client_secret_digest: bytes

    @classmethod
    def of(cls, row: asyncpg.Record) -> ClientApp:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An application's API key (``KEY_COLUMNS``); never its digest."""

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> ApiKey:
        return cls(*row)


async def insert_app(conn: Conn, values: dict[str, Any]) -> uuid.UUID:
    app_id: uuid.UUID = await conn.fetchval(
        """
        INSERT INTO apps (org_id, name, description, client_id, client_secret_digest,
                          redirect_uris, scopes)
        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
        """,
        values["org_id"],
        values["name"],
        values["description"],
        values["client_id"],
        values["client_secret_digest"],
        values["redirect_uris"],
        values["scopes"],
    )
    return app_id


async def get_app(conn: Executor, app_id: uuid.UUID, *, lock: bool = False) -> App | None:
    suffix = " FOR UPDATE OF a" if lock else ""
    row = await conn.fetchrow(
        f"SELECT {APP_COLUMNS} FROM apps a JOIN orgs o ON o.id = a.org_id WHERE a.id = $1{suffix}",
        app_id,
    )
    return None if row is None else App.of(row)


async def find_app_by_client_id(conn: Executor, client_id: str) -> ClientApp | None:
    row = await conn.fetchrow(
        f"SELECT {APP_COLUMNS}, a.client_secret_digest FROM apps a JOIN orgs o ON o.id = a.org_id "
        "WHERE a.client_id = $1",
        client_id,
    )
    return None if row is None else ClientApp.of(row)


async def list_apps(
    conn: Executor,
    *,
    orgs: list[uuid.UUID] | None,
    own_app: uuid.UUID | None,
    org_name: str | None,
    after: str | None,
    limit: int,
) -> list[App]:
    """Apps of ``orgs`` (all when None) plus the caller's own app."""
    rows = await conn.fetch(
        f"""
        SELECT {APP_COLUMNS} FROM apps a JOIN orgs o ON o.id = a.org_id
        WHERE ($1::uuid[] IS NULL OR a.org_id = ANY($1) OR a.id = $2)
          AND ($3::text IS NULL OR o.name = $3)
          AND ($4::text IS NULL OR a.id::text > $4)
        ORDER BY a.id LIMIT $5
        """,
        orgs,
        own_app,
        org_name,
        after,
        limit,
    )
    return [App.of(r) for r in rows]


async def update_app(conn: Conn, app_id: uuid.UUID, changes: dict[str, Any]) -> None:
    sets, args = [], [app_id]
    for column in ("description", "redirect_uris", "scopes", "plan"):
        if column in changes:
            args.append(changes[column])
            sets.append(f"{column} = ${len(args)}")
    if "disabled" in changes:
        args.append(changes["disabled"])
        sets.append(f"disabled_at = CASE WHEN ${len(args)} THEN coalesce(disabled_at, now()) END")
    if "client_secret_digest" in changes:
        args.append(changes["client_secret_digest"])
        sets.append(f"client_secret_digest = ${len(args)}")
    sets.append("updated_at = now()")
    await conn.execute(f"UPDATE apps SET {', '.join(sets)} WHERE id = $1", *args)


async def delete_app(conn: Conn, app_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM apps WHERE id = $1", app_id)


async def list_keys(
    conn: Executor, app_id: uuid.UUID, *, after: str | None, limit: int
) -> list[ApiKey]:
    rows = await conn.fetch(
        f"SELECT {KEY_COLUMNS} FROM api_keys WHERE app_id = $1 "
        "AND ($2::text IS NULL OR id::text > $2) ORDER BY id LIMIT $3",
        app_id,
        after,
        limit,
    )
    return [ApiKey.of(r) for r in rows]


async def get_key(conn: Executor, app_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    row = await conn.fetchrow(
        f"SELECT {KEY_COLUMNS} FROM api_keys WHERE app_id = $1 AND id = $2", app_id, key_id
    )
    return None if row is None else ApiKey.of(row)


async def revoke_key(conn: Conn, key_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", key_id
    )


async def expire_key(conn: Conn, key_id: uuid.UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE api_keys SET expires_at = LEAST(coalesce(expires_at, $2), $2) WHERE id = $1",
        key_id,
        at,
    )


async def set_rotated_from(conn: Conn, key_id: uuid.UUID, old_id: uuid.UUID, expires: Any) -> None:
    await conn.execute(
        "UPDATE api_keys SET rotated_from = $2, expires_at = $3 WHERE id = $1",
        key_id,
        old_id,
        expires,
    )
