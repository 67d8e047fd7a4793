"""The error boundary of the client commands: a problem is a few lines, never a traceback.

Exit statuses: 1 the server answered with an error (its problem's title and
detail are printed, with the field errors), 2 the command was used wrongly
(bad option, unknown profile; click's own usage errors exit 2 too), 3 no
answer was had from the server (the URL tried is printed), 130 interrupted; a
reader that stops reading stdout (``| head``) ends the command quietly with 0.
Tokens are never printed.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import typer

from entrepot.client.errors import (
    ConnectionFailed,
    Forbidden,
    Gone,
    ProblemError,
    Unauthorized,
)
from entrepot.commands.connection import ConfigError, Connection

EXIT_API = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_INTERRUPTED = 130

MAX_FIELD_ERRORS = 20
_UNREACHABLE = {errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH}
_SCOPE = re.compile(r"(?:lacks the|does not include) '([a-z]+:[a-z_]+|admin)'")


class UsageProblem(Exception):
    """The command cannot run as given (a file that is not JSON, options that clash)."""


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")


@contextmanager
def reporting(connection: Connection | None) -> Iterator[None]:
    """Run a command, turning what the SDK raises into lines on stderr and an exit status."""
    try:
        yield
    except ProblemError as exc:
        _problem(exc, connection)
        raise typer.Exit(EXIT_API) from None
    except ConnectionFailed as exc:
        _say(f"entrepot: no answer from {exc.url} ({_reason(exc.cause)})")
        where = connection.source if connection else "--url or ENTREPOT_URL"
        _say(f"hint: is the server running at that address? It came from {where}.")
        raise typer.Exit(EXIT_CONNECTION) from None
    except (ConfigError, UsageProblem) as exc:
        _say(f"entrepot: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        _say("entrepot: interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        # The reader stopped reading (`| head`): that is its choice, not a failure.
        with suppress(OSError, ValueError):  # so the flush at exit does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


def _problem(exc: ProblemError, connection: Connection | None) -> None:
    _say(f"entrepot: {exc.status} {exc.title}" + (f": {exc.detail}" if exc.detail else ""))
    for error in exc.errors[:MAX_FIELD_ERRORS]:
        path = error.get("path") or error.get("line") or ""
        _say(f"  {path}: {error.get('message') or error.get('errors') or error}")
    if len(exc.errors) > MAX_FIELD_ERRORS:
        _say(f"  ... and {len(exc.errors) - MAX_FIELD_ERRORS} more")
    if exc.status >= 500 and exc.request_id:
        _say(f"request id: {exc.request_id}")
    if isinstance(exc, Unauthorized):
        used = (
            f" (the token of profile {connection.profile!r} was used)"
            if connection and connection.profile and connection.token
            else ""
        )
        _say(
            "hint: pass a valid API key or access token with --token or ENTREPOT_TOKEN, "
            f"or save one with 'entrepot login'{used}."
        )
    elif isinstance(exc, Gone):
        _say(
            "hint: the feed cannot continue from there; start again from a snapshot "
            "(entrepot export DATASET -o FILE says the seq to follow from)."
        )
    elif isinstance(exc, Forbidden):
        scope = exc.problem.get("scope") or _scope_in(exc.detail)
        if scope:
            _say(
                f"hint: this needs the {scope} scope, on the credential (entrepot keys create "
                f"APP NAME --scope {scope}) and, for a restricted dataset, in the app's grant "
                f"(entrepot access-requests create DATASET --app APP --scope {scope})."
            )
        else:
            _say("hint: the credential is valid but not allowed to do this.")


def _scope_in(detail: str) -> str | None:
    found = _SCOPE.search(detail)
    return found.group(1) if found else None


def _reason(cause: BaseException) -> str:
    """Why no answer came: the OS's words for a socket error, else the exception's."""
    seen: BaseException | None = cause
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return "host not found" if seen.errno == socket.EAI_NONAME else str(seen.strerror)
        if isinstance(seen, OSError) and seen.errno in _UNREACHABLE:
            return os.strerror(seen.errno).lower()
        seen = seen.__cause__ or seen.__context__
    text = str(cause)
    if "Connection refused" in text:
        return "connection refused"
    return text or type(cause).__name__
