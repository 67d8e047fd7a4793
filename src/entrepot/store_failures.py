"""What a failing store raises: the errors a background loop rides out (it logs, and
tries again on its next round) and a request's readiness check counts as "store down".

A store that restarts, fails over or ends our connections (``pg_terminate_backend``)
shows up as any of these, not only as a connection error: PostgreSQL's own message
(``AdminShutdownError``, 57P01), asyncpg's "the connection closed in the middle of an
operation" (an ``InterfaceError``), a refused or reset socket (``OSError``; timeouts
too), and, when the connection died with an operation pending, asyncpg's
``InternalClientError`` ("cannot switch to state ...; another operation is in
progress"), which derives from neither. A loop that catches fewer dies of the rest
(tests/chaos/test_rolling.py met it: docs/ha.md).
"""

from __future__ import annotations

import asyncpg

STORE_FAILURES: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
