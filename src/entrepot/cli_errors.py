"""What the ``entrepot`` command says when an operator's mistake stops it.

A bad setting or a store that cannot be used becomes one line saying what
to fix and an exit status (2 for settings, 1 for the store); anything else
is a bug, left to keep its traceback. Values that may hold a secret (tokens,
URLs with passwords) are never echoed.
"""

from __future__ import annotations

import errno
import os
import re
import socket
from typing import TYPE_CHECKING, Any, get_args

from pydantic import SecretStr, ValidationError

from entrepot.dsn import describe_hosts
from entrepot.settings import Settings

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

EXIT_UNAVAILABLE = 1  # the store (or a port) could not be used: fix it, or retry later
EXIT_BAD_SETTINGS = 2  # the configuration itself is wrong


def explain(
    exc: Exception, store_url: str | None, setting: str = "ENTREPOT_DATABASE_URL"
) -> tuple[str, int] | None:
    """The line and exit status for a bad setting or an unusable store (``store_url``:
    the store the command was reaching, if any, given by ``setting``); None for a bug."""
    from entrepot.ops.metrics_server import MetricsListenerError
    from entrepot.store.capacity import ConnectionBudgetExceeded
    from entrepot.store.migrate import MigrationLockTimeout

    if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
        return "; ".join(_setting_error(e) for e in exc.errors()), EXIT_BAD_SETTINGS
    if isinstance(exc, MetricsListenerError | ConnectionBudgetExceeded):
        return str(exc), EXIT_UNAVAILABLE
    if isinstance(exc, MigrationLockTimeout):
        return (
            f"{exc}; retry when that is done, or raise ENTREPOT_MIGRATION_LOCK_TIMEOUT_MS",
            EXIT_UNAVAILABLE,
        )
    return None if store_url is None else _store_error(exc, describe_hosts(store_url), setting)


_SETTING_PHRASES = {
    "int_parsing": "not a valid integer",
    "float_parsing": "not a valid number",
    "bool_parsing": "not a valid boolean (true or false)",
    "string_pattern_mismatch": "must match {pattern}",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
}


def _setting_error(error: ErrorDetails) -> str:
    """``ENTREPOT_NAME: what is wrong ('value')``; never the value of a secret or a URL."""
    field = str(error["loc"][0]) if error["loc"] else ""
    kind, ctx, msg = error["type"], error.get("ctx") or {}, error["msg"]
    if kind in _SETTING_PHRASES:
        phrase = _SETTING_PHRASES[kind].format(**ctx)
    elif kind == "value_error":
        phrase = msg.removeprefix("Value error, ")
    else:
        phrase = msg[:1].lower() + msg[1:]
    value = error.get("input")
    if _may_show(field, value):
        shown = repr(value)
        phrase += f" ({shown if len(shown) <= 60 else shown[:57] + '...'})"
    return f"ENTREPOT_{field.upper()}: {phrase}" if field else f"settings: {phrase}"


def _may_show(field: str, value: Any) -> bool:
    """Echo what was given, unless it is a secret or may hold a password (URLs)."""
    if not field or field not in Settings.model_fields or isinstance(value, dict):
        return False
    annotation = Settings.model_fields[field].annotation
    if annotation is SecretStr or SecretStr in get_args(annotation) or field.endswith("_url"):
        return False
    return not (isinstance(value, str) and ("://" in value or "@" in value))


_UNREACHABLE = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.EHOSTDOWN,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EADDRNOTAVAIL,
}


def _store_error(exc: Exception, where: str, setting: str) -> tuple[str, int] | None:
    """What PostgreSQL (or the way to it) said, and which setting to check."""
    import asyncpg

    check = f"check {setting}"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"{exc} on PostgreSQL at {where}; create it or {check}", EXIT_UNAVAILABLE
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):  # and bad passwords
        return f"PostgreSQL at {where} refused the credentials ({exc}); {check}", EXIT_UNAVAILABLE
    if isinstance(
        exc,
        asyncpg.TooManyConnectionsError
        | asyncpg.CannotConnectNowError
        | asyncpg.PostgresConnectionError,
    ):
        return f"PostgreSQL at {where} does not accept connections ({exc}); {check}", 1
    if isinstance(exc, asyncpg.ClientConfigurationError):
        return f"{setting}: {exc}", EXIT_BAD_SETTINGS
    reason = _unreachable(exc)
    if reason is None:
        return None
    return f"cannot connect to PostgreSQL at {where} ({reason}); {check}", EXIT_UNAVAILABLE


def _unreachable(exc: Exception) -> str | None:
    """Why the connection failed, if it is a network failure; None otherwise."""
    if isinstance(exc, socket.gaierror):
        return "host not found" if exc.errno == socket.EAI_NONAME else str(exc.strerror).lower()
    if isinstance(exc, TimeoutError):
        return "timed out"
    if not isinstance(exc, OSError):
        return None
    if exc.errno in _UNREACHABLE:
        return os.strerror(exc.errno).lower()
    # asyncio reports a host with several addresses (localhost: ::1 and 127.0.0.1) as one
    # OSError("Multiple exceptions: [Errno 111] ..., [Errno 111] ...") without an errno.
    codes = {int(code) for code in re.findall(r"\[Errno (\d+)\]", str(exc))}
    if exc.errno is None and codes and codes <= _UNREACHABLE:
        return ", ".join(os.strerror(code).lower() for code in sorted(codes))
    return None
