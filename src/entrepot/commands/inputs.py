"""Reading what a user gives on the command line: JSON bodies, files, filters, times."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from entrepot.commands.errors import UsageProblem

_FILTER = re.compile(r"^(?P<field>[^\[\]=]+)(?:\[(?P<op>[a-z]+)\])?=(?P<value>.*)$", re.DOTALL)


def json_text(given: str, what: str) -> Any:
    """JSON given inline, or ``@path`` (a file), or ``@-`` (stdin), as curl takes it."""
    if given.startswith("@"):
        source = given[1:]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageProblem(f"{what}: cannot read {source}: {exc.strerror}") from None
    else:
        text = given
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageProblem(f"{what} is not JSON: {exc}") from None


def json_object(given: str, what: str) -> dict[str, Any]:
    value = json_text(given, what)
    if not isinstance(value, dict):
        raise UsageProblem(f"{what} must be a JSON object")
    return value


def json_file(path: Path, what: str) -> dict[str, Any]:
    return json_object(f"@{path}", what)


def filters(given: list[str] | None) -> dict[str, Any]:
    """``price[lt]=10``, ``region=eu``: the API's ``filter[field][op]=value``, as a mapping."""
    found: dict[str, Any] = {}
    for text in given or []:
        match = _FILTER.match(text)
        if match is None:
            raise UsageProblem(f"--filter {text!r}: write FIELD=VALUE or FIELD[OP]=VALUE")
        field, op, value = match["field"], match["op"] or "eq", match["value"]
        existing = found.setdefault(field, {})
        existing[op] = value
    return found


def moment(given: str | None, what: str) -> datetime | None:
    """An RFC 3339 time (a date alone is midnight UTC; no zone is UTC)."""
    if given is None:
        return None
    try:
        when = datetime.fromisoformat(given.replace("Z", "+00:00"))
    except ValueError:
        raise UsageProblem(f"{what}: {given!r} is not a time like 2026-01-31T12:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
