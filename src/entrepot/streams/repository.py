"""SQL for the configured JetStream streams and the grants they narrow to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from entrepot.store.types import Executor

STREAM_COLUMNS = (
    "s.id, s.dataset_id, d.name AS dataset, s.grant_id, s.stream, s.subject, "
    "s.created_at, s.created_by, s.ended_at, s.ended_reason"
)
STREAM_FROM = "FROM jetstream_streams s JOIN datasets d ON d.id = s.dataset_id"


@dataclass(frozen=True, slots=True)
class StreamRow:
    """One dataset's feed going to one JetStream stream (``grant_id`` None: full records)."""

    id: uuid.UUID
    dataset_id: int
    dataset: str
    grant_id: uuid.UUID | None
    stream: str
    subject: str
    created_at: datetime
    created_by: str
    ended_at: datetime | None
    ended_reason: str | None

    @classmethod
    def of(cls, record: asyncpg.Record) -> StreamRow:
        return cls(*record)


@dataclass(frozen=True, slots=True)
class GrantRow:
    """What a grant lets its app see, and whether it still does."""

    id: uuid.UUID
    dataset_id: int
    scopes: list[str]
    fields: list[str] | None
    row_filter: str | None
    live: bool
    revoked: bool

    @classmethod
    def of(cls, record: asyncpg.Record) -> GrantRow:
        return cls(*record)


async def insert_stream(
    conn: Executor,
    *,
    dataset_id: int,
    grant_id: uuid.UUID | None,
    stream: str,
    subject: str,
    created_by: str,
) -> StreamRow | None:
    """The new stream; None when its JetStream stream name or subject is taken."""
    stream_id: uuid.UUID | None = await conn.fetchval(
        """
        INSERT INTO jetstream_streams (dataset_id, grant_id, stream, subject, created_by)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id
        """,
        dataset_id,
        grant_id,
        stream,
        subject,
        created_by,
    )
    return None if stream_id is None else await get_stream(conn, stream_id)


async def get_stream(conn: Executor, stream_id: uuid.UUID) -> StreamRow | None:
    row = await conn.fetchrow(f"SELECT {STREAM_COLUMNS} {STREAM_FROM} WHERE s.id = $1", stream_id)
    return None if row is None else StreamRow.of(row)


async def list_streams(conn: Executor, *, active_only: bool = False) -> list[StreamRow]:
    where = "WHERE s.ended_at IS NULL " if active_only else ""
    rows = await conn.fetch(
        f"SELECT {STREAM_COLUMNS} {STREAM_FROM} {where}ORDER BY s.created_at, s.id"
    )
    return [StreamRow.of(r) for r in rows]


async def end_stream(conn: Executor, stream_id: uuid.UUID, reason: str) -> bool:
    """Mark the stream ended (nothing more is published to it); False if it already was."""
    status: str = await conn.execute(
        "UPDATE jetstream_streams SET ended_at = now(), ended_reason = $2 "
        "WHERE id = $1 AND ended_at IS NULL",
        stream_id,
        reason,
    )
    return status == "UPDATE 1"


async def get_grant(conn: Executor, grant_id: uuid.UUID) -> GrantRow | None:
    """Read fresh on every use (no cache): a revocation stops the stream at its next page."""
    row = await conn.fetchrow(
        """
        SELECT id, dataset_id, scopes, fields, row_filter::text AS row_filter,
               revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) AS live,
               revoked_at IS NOT NULL AS revoked
        FROM grants WHERE id = $1
        """,
        grant_id,
    )
    return None if row is None else GrantRow.of(row)


async def dataset_id_of(conn: Executor, name: str) -> tuple[int, uuid.UUID] | None:
    """The dataset's id and owning organisation."""
    row = await conn.fetchrow("SELECT id, org_id FROM datasets WHERE name = $1", name)
    return None if row is None else (row["id"], row["org_id"])
