"""The shapes of record answers, for the OpenAPI document only.

The record routes render bytes themselves (``render.py``: the envelope around
PostgreSQL's ``data::text``), so these models are never instantiated on the
request path; they declare exactly what ``render.envelope`` and
``render.page`` write, and schemathesis checks every answer against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    """A record in its envelope."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(
        min_length=1,
        max_length=255,
        description="The primary key's value, or the id the platform assigned (a ULID).",
    )
    version: int = Field(ge=1, description="1 when created, +1 on every change; the ETag.")
    data: dict[str, Any] = Field(description="The record, as the dataset's schema describes it.")
    created_at: datetime
    updated_at: datetime


class RecordPage(BaseModel):
    """A page of a list: ``next_cursor`` is null on the last page."""

    model_config = ConfigDict(extra="forbid")
    data: list[Record]
    next_cursor: str | None = Field(
        description="Send as `cursor` for the next page; null when there is none."
    )


class LineErrors(BaseModel):
    line: int = Field(ge=1, description="The physical line the record starts on.")
    errors: list[dict[str, Any]] = Field(description="`{path, message}` for each failure.")


class ImportReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inserted: int = Field(ge=0)
    updated: int = Field(ge=0)
    failed: int = Field(ge=0)
    errors: list[LineErrors] = Field(max_length=100, description="The first failed lines.")
