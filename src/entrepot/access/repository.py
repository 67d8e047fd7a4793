"""SQL for access requests and grants."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from entrepot.store.types import Conn, Executor

REQUEST_COLUMNS = """
    r.id, d.name AS dataset, r.dataset_id, d.org_id AS dataset_org_id, r.app_id,
    a.org_id AS app_org_id, r.scopes, r.reason, r.status, r.note, r.requested_by, r.created_at,
    r.decided_at, r.decided_by, r.grant_id, a.name AS app_name, ao.name AS app_org
"""
# The requesting app's name and organisation: what a provider deciding needs to know
# who asks (never its keys or other grants).
REQUEST_FROM = """
    FROM access_requests r
    JOIN datasets d ON d.id = r.dataset_id
    JOIN apps a ON a.id = r.app_id
    JOIN orgs ao ON ao.id = a.org_id
"""
GRANT_COLUMNS = """
    g.id, d.name AS dataset, g.dataset_id, d.org_id AS dataset_org_id, g.app_id,
    a.org_id AS app_org_id, g.scopes, g.fields, g.row_filter::text AS row_filter, g.expires_at,
    g.revoked_at, g.created_at, g.created_by,
    CASE WHEN g.revoked_at IS NOT NULL THEN 'revoked'
         WHEN g.expires_at IS NOT NULL AND g.expires_at <= now() THEN 'expired'
         ELSE 'active' END AS status
"""
GRANT_FROM = """
    FROM grants g
    JOIN datasets d ON d.id = g.dataset_id
    JOIN apps a ON a.id = g.app_id
"""
# Visible to: everyone when $1 is NULL (platform admin); otherwise admins of the
# app's or the dataset's organisation ($1), and the app itself ($2).
VISIBLE = "($1::uuid[] IS NULL OR a.org_id = ANY($1) OR d.org_id = ANY($1) OR {alias}.app_id = $2)"


async def dataset_by_name(conn: Executor, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, name, org_id, visibility, auto_approve FROM datasets WHERE name = $1", name
    )


async def dataset_for_grant(conn: Conn, dataset_id: int) -> asyncpg.Record | None:
    """The dataset's current schema, locked against schema changes until commit."""
    return await conn.fetchrow(
        "SELECT id, name, org_id, schema::text AS schema, primary_key FROM datasets "
        "WHERE id = $1 FOR KEY SHARE",
        dataset_id,
    )


async def lock_request_slot(conn: Conn, app_id: uuid.UUID, dataset_id: int) -> None:
    """Serialise request creation per (app, dataset), so two pending twins cannot race."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"access_request:{app_id}:{dataset_id}",
    )


async def pending_exists(conn: Conn, app_id: uuid.UUID, dataset_id: int) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM access_requests "
        "WHERE app_id = $1 AND dataset_id = $2 AND status = 'pending')",
        app_id,
        dataset_id,
    )
    return found


async def insert_request(
    conn: Conn,
    *,
    dataset_id: int,
    app_id: uuid.UUID,
    scopes: list[str],
    reason: str,
    requested_by: str,
) -> uuid.UUID:
    request_id: uuid.UUID = await conn.fetchval(
        """
        INSERT INTO access_requests (dataset_id, app_id, scopes, reason, requested_by)
        VALUES ($1, $2, $3, $4, $5) RETURNING id
        """,
        dataset_id,
        app_id,
        scopes,
        reason,
        requested_by,
    )
    return request_id


async def get_request(
    conn: Executor, request_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    suffix = " FOR UPDATE OF r" if lock else ""
    return await conn.fetchrow(
        f"SELECT {REQUEST_COLUMNS} {REQUEST_FROM} WHERE r.id = $1{suffix}", request_id
    )


async def decide_request(
    conn: Conn,
    request_id: uuid.UUID,
    *,
    status: str,
    note: str | None,
    decided_by: str,
    grant_id: uuid.UUID | None,
) -> None:
    await conn.execute(
        """
        UPDATE access_requests
        SET status = $2, note = $3, decided_by = $4, decided_at = now(), grant_id = $5
        WHERE id = $1
        """,
        request_id,
        status,
        note,
        decided_by,
        grant_id,
    )


async def list_requests(
    conn: Executor,
    *,
    orgs: list[uuid.UUID] | None,
    own_app: uuid.UUID | None,
    status: str | None,
    dataset: str | None,
    app_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Newest first; ``after`` is the (created_at, id) of the last row already served."""
    return await conn.fetch(
        f"""
        SELECT {REQUEST_COLUMNS} {REQUEST_FROM}
        WHERE {VISIBLE.format(alias="r")}
          AND ($3::text IS NULL OR r.status = $3)
          AND ($4::text IS NULL OR d.name = $4)
          AND ($5::uuid IS NULL OR r.app_id = $5)
          AND ($6::timestamptz IS NULL OR (r.created_at, r.id) < ($6, $7::uuid))
        ORDER BY r.created_at DESC, r.id DESC
        LIMIT $8
        """,
        orgs,
        own_app,
        status,
        dataset,
        app_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )


async def insert_grant(
    conn: Conn,
    *,
    dataset_id: int,
    app_id: uuid.UUID,
    scopes: list[str],
    fields: list[str] | None,
    row_filter: str | None,
    expires_at: datetime | None,
    created_by: str,
) -> uuid.UUID:
    grant_id: uuid.UUID = await conn.fetchval(
        """
        INSERT INTO grants (dataset_id, app_id, scopes, fields, row_filter, expires_at, created_by)
        VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) RETURNING id
        """,
        dataset_id,
        app_id,
        scopes,
        fields,
        row_filter,
        expires_at,
        created_by,
    )
    return grant_id


async def revoke_superseded(
    conn: Conn, app_id: uuid.UUID, dataset_id: int, keep: uuid.UUID
) -> list[uuid.UUID]:
    """Revoke the app's other live grants on the dataset: one live grant per pair."""
    rows = await conn.fetch(
        """
        UPDATE grants SET revoked_at = now()
        WHERE app_id = $1 AND dataset_id = $2 AND id <> $3 AND revoked_at IS NULL
          AND (expires_at IS NULL OR expires_at > now())
        RETURNING id
        """,
        app_id,
        dataset_id,
        keep,
    )
    return [r["id"] for r in rows]


async def get_grant(
    conn: Executor, grant_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    suffix = " FOR UPDATE OF g" if lock else ""
    return await conn.fetchrow(
        f"SELECT {GRANT_COLUMNS} {GRANT_FROM} WHERE g.id = $1{suffix}", grant_id
    )


async def revoke_grant(conn: Conn, grant_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE grants SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", grant_id
    )


async def live_grants_of(conn: Executor, app_id: uuid.UUID) -> list[asyncpg.Record]:
    """The app's grants that are in force now, by dataset name."""
    return await conn.fetch(
        f"""
        SELECT {GRANT_COLUMNS} {GRANT_FROM}
        WHERE g.app_id = $1 AND g.revoked_at IS NULL
          AND (g.expires_at IS NULL OR g.expires_at > now())
        ORDER BY d.name, g.created_at DESC
        """,
        app_id,
    )


async def list_grants(
    conn: Executor,
    *,
    orgs: list[uuid.UUID] | None,
    own_app: uuid.UUID | None,
    dataset: str | None,
    app_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Newest first; ``after`` is the (created_at, id) of the last row already served."""
    return await conn.fetch(
        f"""
        SELECT {GRANT_COLUMNS} {GRANT_FROM}
        WHERE {VISIBLE.format(alias="g")}
          AND ($3::text IS NULL OR d.name = $3)
          AND ($4::uuid IS NULL OR g.app_id = $4)
          AND ($5::timestamptz IS NULL OR (g.created_at, g.id) < ($5, $6::uuid))
        ORDER BY g.created_at DESC, g.id DESC
        LIMIT $7
        """,
        orgs,
        own_app,
        dataset,
        app_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
