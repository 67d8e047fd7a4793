"""``entrepot sync``: mirror datasets into SQLite, PostgreSQL or MySQL from the change feed."""

from entrepot.sync.agent import DatasetFollower, SyncOptions, run_sync
from entrepot.sync.targets import PostgresTarget, SQLiteTarget, open_target

__all__ = [
    "DatasetFollower",
    "PostgresTarget",
    "SQLiteTarget",
    "SyncOptions",
    "open_target",
    "run_sync",
]
