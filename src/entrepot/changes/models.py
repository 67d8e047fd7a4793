"""The shape of a feed page, for the OpenAPI document only (``service.py`` renders
the bytes: ``render_change`` and ``FeedPage.body``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int = Field(ge=1, description="Strictly increasing per dataset, in commit order.")
    op: Literal["upsert", "delete"]
    id: str = Field(description="The record's id.")
    version: int = Field(ge=1, description="The record's version after the change.")
    data: dict[str, Any] | None = Field(description="The record after the change; null on delete.")
    at: datetime = Field(description="When the change was written.")


class ChangePage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    changes: list[Change]
    last_seq: int = Field(
        ge=0, description="Send as `after` next time (the last change here, or the head)."
    )
    incarnation: str = Field(
        description="Which incarnation of the dataset these seqs count in; send it back as "
        "`incarnation`."
    )


class StreamTicket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket: str = Field(
        description="Opens this dataset's event stream as you, as `?ticket=`; nothing else. "
        "A secret until it expires: keep it out of logs."
    )
    expires_at: datetime = Field(
        description="Until when it may (re)open the stream; a stream already open runs on."
    )
    url: str = Field(description="The event stream's URL with the ticket: `new EventSource(url)`.")
