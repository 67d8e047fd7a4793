"""Idempotency-Key (IETF draft semantics) kept in the same transaction as the write.

The first request for a key takes a transaction-scoped advisory lock on it;
a concurrent duplicate fails to take the lock and gets 409 at once. The
stored response commits atomically with the change itself, so a crash
between the two cannot happen: either both exist or neither does and the
retry runs afresh. Failed requests (4xx) roll back and store nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import asyncpg
import orjson

from entrepot.problems import BadRequest, Conflict, Unprocessable
from entrepot.store.types import Conn

LOCK_NAMESPACE = 0x1DE7
MAX_KEY_LENGTH = 255


@dataclass
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise BadRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            errors=[{"path": "header:Idempotency-Key", "message": "invalid key"}],
        )
    return key


def request_fingerprint(method: str, path: str, body: bytes, *extra: str | None) -> bytes:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), *[(e or "").encode() for e in extra]):
        digest.update(part)
        digest.update(b"\x00")
    digest.update(body)
    return digest.digest()


async def claim(conn: Conn, scope: str, key: str, fingerprint: bytes) -> StoredResponse | None:
    """Inside the write's transaction: lock the key, return a stored response if any."""
    locked = await conn.fetchval(
        "SELECT pg_try_advisory_xact_lock($1, hashtext($2))", LOCK_NAMESPACE, f"{scope} {key}"
    )
    if not locked:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry later.",
            headers={"Retry-After": "1"},
        )
    row = await conn.fetchrow(
        "SELECT fingerprint, status, headers::text, body FROM idempotency_keys "
        "WHERE scope = $1 AND key = $2",
        scope,
        key,
    )
    if row is None:
        return None
    if row["fingerprint"] != fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request.",
            errors=[{"path": "header:Idempotency-Key", "message": "reused with another request"}],
        )
    return StoredResponse(row["status"], row["body"], orjson.loads(row["headers"]))


async def remember(
    conn: Conn, scope: str, key: str, fingerprint: bytes, response: StoredResponse
) -> None:
    await conn.execute(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, status, headers, body) "
        "VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
        scope,
        key,
        fingerprint,
        response.status,
        orjson.dumps(response.headers).decode(),
        response.body,
    )


async def purge_expired(pool: asyncpg.Pool, retention_hours: int, batch: int = 5000) -> int:
    """Delete keys past retention in small batches; return how many went."""
    total = 0
    while True:
        status = await pool.execute(
            """
            DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM idempotency_keys
                WHERE created_at < now() - make_interval(hours => $1) LIMIT $2))
            """,
            retention_hours,
            batch,
        )
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < batch:
            return total
