"""Operator recovery: a new platform-admin API key, made where the store is reachable.

Like Django's ``createsuperuser``, it needs no running server and no existing
credential: whoever can reach the store already holds every right. The audit
row names the command and the OS user instead of a principal, and never the
secret, which only the operator sees, once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from entrepot.auditing.log import record
from entrepot.auth.keys import new_key
from entrepot.auth.repository import insert_key

ACTOR = "system:cli"


@dataclass(frozen=True)
class AdminKey:
    id: uuid.UUID
    name: str
    secret: str


async def create_admin_key(dsn: str, *, name: str, os_user: str) -> AdminKey:
    """Insert an admin key shaped like the bootstrap key, and its audit row, in one transaction."""
    key = new_key()
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            key_id = await insert_key(conn, key, name=name, is_admin=True, scopes=["admin"])
            await record(
                conn,
                None,
                "admin_key.created",
                f"key:{key_id}",
                actor=ACTOR,
                details={"key_id": str(key_id), "name": name, "os_user": os_user},
            )
    finally:
        await conn.close()
    return AdminKey(key_id, name, key.secret)
