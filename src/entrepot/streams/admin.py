"""``entrepot admin streams``: the operator's edge to the stream use cases.

Like ``entrepot admin create-key`` it needs no running server: whoever reaches
the store may configure what the platform publishes. Each call is one
connection and one unit of work; the audit rows name the command and the OS user.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from entrepot.store.work import Reads, within
from entrepot.streams import service


async def add(
    dsn: str,
    dataset: str,
    *,
    grant: uuid.UUID | None,
    stream: str | None,
    subject: str | None,
    os_user: str,
) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        async with within(Reads(conn)) as work:
            row = await service.add_stream(
                work, dataset, grant=grant, stream=stream, subject=subject, os_user=os_user
            )
    finally:
        await conn.close()
    return service.stream_out(row)


async def listing(dsn: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await service.list_streams(conn)
    finally:
        await conn.close()
    return [service.stream_out(row) for row in rows]


async def end(dsn: str, stream_id: uuid.UUID, *, os_user: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        async with within(Reads(conn)) as work:
            row = await service.end_stream(
                work, stream_id, "ended_by_operator", actor=service.ACTOR, os_user=os_user
            )
    finally:
        await conn.close()
    return service.stream_out(row)
