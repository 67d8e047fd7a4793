"""Type aliases for what repositories accept: a connection, pooled or not."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy
Executor: TypeAlias = Conn | asyncpg.Pool
