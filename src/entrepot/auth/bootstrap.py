"""First-start bootstrap: the platform-admin API key.

Runs once per store, under the migration advisory lock's sibling lock, so many
replicas starting together create exactly one admin key. Later starts ignore
ENTREPOT_BOOTSTRAP_TOKEN and say so: a lost admin key is replaced with
``entrepot admin create-key`` (auth/admin_keys.py), not by a new token.
"""

from __future__ import annotations

import asyncpg
import structlog

from entrepot.auth.keys import new_key
from entrepot.auth.repository import insert_key

BOOTSTRAP_LOCK_KEY = 0x626F_6F74_7374_7270  # "bootstrp"
ALREADY_BOOTSTRAPPED = (
    "the platform is already bootstrapped, so ENTREPOT_BOOTSTRAP_TOKEN is ignored; "
    "run `entrepot admin create-key` to make a new platform-admin key"
)

log = structlog.get_logger("entrepot.bootstrap")


async def bootstrap(dsn: str, token: str | None) -> str | None:
    """Create the admin key on first start; return its secret if we generated it."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", BOOTSTRAP_LOCK_KEY)
            if await conn.fetchval("SELECT 1 FROM platform_state"):
                if token is not None:  # an operator may expect a new key from it: say why not
                    log.warning("bootstrap_token_ignored", detail=ALREADY_BOOTSTRAPPED)
                return None
            key = new_key(token)
            await insert_key(conn, key, name="bootstrap admin", is_admin=True, scopes=["admin"])
            await conn.execute("INSERT INTO platform_state DEFAULT VALUES")
            return None if token is not None else key.secret
    finally:
        await conn.close()
