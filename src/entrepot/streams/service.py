"""Configuring the streams: which dataset's feed goes to which JetStream stream, for
whom. Operator use cases (``entrepot admin streams``), each audited with its change.

A stream carries either full records (no grant: for the provider's own systems)
or exactly what one grant lets its app see of the feed (its fields and rows);
it ends when that grant is revoked or expires, and is never widened.
"""

from __future__ import annotations

import uuid
from typing import Any

from entrepot.auditing.log import record
from entrepot.problems import Conflict, NotFound, Unprocessable
from entrepot.store.types import Executor
from entrepot.store.work import UnitOfWork
from entrepot.streams import messages
from entrepot.streams import repository as repo
from entrepot.streams.repository import StreamRow

ACTOR = "system:cli"
PUBLISHER = "system:jetstream"


def stream_out(row: StreamRow) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "dataset": row.dataset,
        "audience": "full" if row.grant_id is None else "grant",
        "grant": str(row.grant_id) if row.grant_id is not None else None,
        "stream": row.stream,
        "subject": row.subject,
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
        "ended_at": row.ended_at.isoformat() if row.ended_at else None,
        "ended_reason": row.ended_reason,
    }


async def add_stream(
    work: UnitOfWork,
    dataset: str,
    *,
    grant: uuid.UUID | None,
    stream: str | None,
    subject: str | None,
    os_user: str,
) -> StreamRow:
    """Publish ``dataset``'s feed to a JetStream stream: full, or as ``grant`` sees it."""
    conn = work.conn
    found = await repo.dataset_id_of(conn, dataset)
    if found is None:
        raise NotFound(f"Dataset {dataset!r} does not exist.")
    dataset_id, org_id = found
    if grant is not None:
        await _check_grant(conn, grant, dataset_id, dataset)
    stream = stream or messages.default_stream_name(dataset, grant)
    subject = subject or messages.default_subject(dataset, grant)
    if not messages.STREAM_NAME.fullmatch(stream):
        raise Unprocessable(
            "A JetStream stream name is 1 to 64 letters, digits, '-' or '_'.",
            errors=[{"path": "stream", "message": "not a JetStream stream name"}],
        )
    if len(subject) > messages.MAX_SUBJECT or not messages.SUBJECT.fullmatch(subject):
        raise Unprocessable(
            "A subject is dot-separated tokens of letters, digits, '-' or '_' (no wildcards).",
            errors=[{"path": "subject", "message": "not a literal NATS subject"}],
        )
    row = await repo.insert_stream(
        conn,
        dataset_id=dataset_id,
        grant_id=grant,
        stream=stream,
        subject=subject,
        created_by=f"{ACTOR}:{os_user}",
    )
    if row is None:
        raise Conflict(f"A stream named {stream!r} or on subject {subject!r} is configured.")
    await record(
        conn,
        None,
        "stream.created",
        f"stream:{row.id}",
        actor=ACTOR,
        target_org_id=org_id,
        details={**stream_out(row), "os_user": os_user},
    )
    return row


async def _check_grant(conn: Executor, grant_id: uuid.UUID, dataset_id: int, name: str) -> None:
    found = await repo.get_grant(conn, grant_id)
    if found is None or found.dataset_id != dataset_id:
        raise NotFound(f"Grant {grant_id} on dataset {name!r} does not exist.")
    if not found.live:
        raise Unprocessable(
            f"Grant {grant_id} is revoked or expired: a stream for it would end at once.",
            errors=[{"path": "grant", "message": "not live"}],
        )
    if "changes:read" not in found.scopes:
        raise Unprocessable(
            f"Grant {grant_id} does not include changes:read: its app may not read the feed.",
            errors=[{"path": "grant", "message": "without changes:read"}],
        )


async def list_streams(conn: Executor) -> list[StreamRow]:
    return await repo.list_streams(conn)


async def end_stream(
    work: UnitOfWork, stream_id: uuid.UUID, reason: str, *, actor: str, os_user: str | None = None
) -> StreamRow:
    """Stop publishing to a stream (what JetStream holds stays there); audited once."""
    row = await repo.get_stream(work.conn, stream_id)
    if row is None:
        raise NotFound(f"Stream {stream_id} does not exist.")
    if await repo.end_stream(work.conn, stream_id, reason):
        ended = await repo.get_stream(work.conn, stream_id)
        assert ended is not None
        details: dict[str, Any] = {"stream": row.stream, "reason": reason}
        if os_user is not None:
            details["os_user"] = os_user
        await record(
            work.conn, None, "stream.ended", f"stream:{row.id}", actor=actor, details=details
        )
        return ended
    return row
