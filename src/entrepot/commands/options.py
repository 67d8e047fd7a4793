"""Options several command groups share."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

Limit = Annotated[
    int | None,
    typer.Option("--limit", min=1, help="At most this many items [default: all, page by page]."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


class Scope(StrEnum):
    datasets_read = "datasets:read"
    records_read = "records:read"
    records_write = "records:write"
    changes_read = "changes:read"
    webhooks_manage = "webhooks:manage"
    admin = "admin"


Scopes = Annotated[
    list[Scope] | None,
    typer.Option("--scope", help="A scope; repeat for several."),
]


def scope_values(given: list[Scope] | None) -> list[str] | None:
    return [s.value for s in given] if given else None


def page_size(limit: int | None) -> int | None:
    return min(limit, 1000) if limit else None
