"""SQL for the admin console's health page: what PostgreSQL itself sees of the platform."""

from __future__ import annotations

from entrepot.store.types import Executor

# Every `entrepot serve` worker holds one connection under this name (store/notify.py's
# invalidation listener, store/listen.py names it), whether or not a pooler is in front.
LISTENER = "entrepot-listen-invalidation"


async def server_processes(conn: Executor) -> int:
    """The server processes connected to this database, counted by their listeners."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = $1",
        LISTENER,
    )
    return count
