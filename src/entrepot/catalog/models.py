"""Request and response models for the dataset endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from entrepot.fields import FIELD_NAME, SLUG, JsonObject, Page, Text

Visibility = Literal["open", "public", "restricted"]


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=SLUG, description="URL slug, unique on the platform.")
    org: str = Field(pattern=SLUG)
    title: Text = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=10_000)
    schema_: JsonObject = Field(alias="schema", description="JSON Schema 2020-12 for one record.")
    primary_key: Text | None = Field(default=None, pattern=FIELD_NAME)
    visibility: Visibility = Field(
        default="restricted",
        description="`restricted`: a grant is needed; `public`: any authenticated caller "
        "reads it; `open`: anyone reads it, with no credential at all (open data).",
    )
    indexes: list[Text] = Field(default_factory=list, max_length=32)
    tags: list[Text] = Field(default_factory=list, max_length=32)
    require_if_match: bool = False
    auto_approve: bool = Field(
        default=False, description="Approve access requests to this dataset automatically."
    )


class DatasetPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Text | None = Field(default=None, min_length=1, max_length=200)
    description: Text | None = Field(default=None, max_length=10_000)
    schema_: JsonObject | None = Field(default=None, alias="schema")
    primary_key: Text | None = None
    visibility: Visibility | None = None
    indexes: list[Text] | None = Field(default=None, max_length=32)
    tags: list[Text] | None = Field(default=None, max_length=32)
    require_if_match: bool | None = None
    auto_approve: bool | None = None


class Dataset(BaseModel):
    name: str
    org: str
    title: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema")
    schema_version: int
    primary_key: str | None
    visibility: str
    indexes: list[str]
    tags: list[str]
    require_if_match: bool
    auto_approve: bool
    created_at: datetime
    updated_at: datetime


class DatasetPage(Page):
    data: list[Dataset]
