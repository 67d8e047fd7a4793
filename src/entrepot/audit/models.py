"""Audit log rows as the API shows them, and the filters that select them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Outcome = Literal["success", "denied", "failure"]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """``actor``, ``action`` and ``target`` match exactly, or by prefix with a trailing ``*``;
    ``since`` is inclusive and ``until`` exclusive; ``org`` is an organisation name;
    ``dataset`` (a name) selects the rows about that dataset: its own, its records', and
    those whose details name it (grants, access requests)."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: Outcome | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    org: str | None = None
    dataset: str | None = None


class AuditEntry(BaseModel):
    id: int = Field(description="Increases with every row; pages run from newest to oldest.")
    at: datetime
    actor: str = Field(
        description="Who acted: 'app:<id>', 'user:<id>', 'key:<id>' (an admin key, or a "
        "refused key), 'prefix:<first characters>' (an unknown key) or 'anonymous'."
    )
    app_id: str | None
    org_id: str | None
    action: str = Field(description="E.g. 'dataset.created', 'record.patched', 'auth.failed'.")
    target: str | None = Field(
        description="What was acted on: 'dataset:<name>', 'dataset:<name>/record:<id>', "
        "'key:<id>'...; for a denial, the request path."
    )
    outcome: Outcome
    status: int | None = Field(description="The HTTP status answered, where one applies.")
    request_id: str | None = Field(description="The X-Request-ID of the request.")
    ip: str | None = Field(description="The client address the request came from.")
    details: dict[str, Any]


class AuditPage(BaseModel):
    data: list[AuditEntry]
    next_cursor: str | None
