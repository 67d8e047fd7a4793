"""Request and response models for the dataset endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from entrepot.fields import FIELD_NAME, SLUG, Email, JsonObject, Page, Text, WebUrl

Visibility = Literal["open", "public", "restricted"]

LICENSE_DOC = (
    "The licence records are published under: an SPDX identifier (`CC-BY-4.0`, "
    "`ODbL-1.0`) or a short name. Catalogue metadata: every caller who sees the "
    "dataset sees it."
)


class Contact(BaseModel):
    """Who answers questions about a dataset; at least one of the three."""

    model_config = ConfigDict(extra="forbid")
    name: Text | None = Field(default=None, min_length=1, max_length=200)
    email: Email | None = None
    url: WebUrl | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Contact:
        if self.name is None and self.email is None and self.url is None:
            raise ValueError("give at least one of name, email and url (or null for none)")
        return self


class ContactOut(BaseModel):
    name: str | None
    email: str | None
    url: str | None


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
    license: Text | None = Field(
        default=None, min_length=1, max_length=100, description=LICENSE_DOC
    )
    license_url: WebUrl | None = Field(default=None, description="Where the licence's text is.")
    contact: Contact | None = None


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
    license: Text | None = Field(
        default=None, min_length=1, max_length=100, description="`null` removes it."
    )
    license_url: WebUrl | None = Field(default=None, description="`null` removes it.")
    contact: Contact | None = Field(default=None, description="Replaced whole; `null` removes it.")


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
    license: str | None
    license_url: str | None
    contact: ContactOut | None
    created_at: datetime
    updated_at: datetime


class DatasetPage(Page):
    data: list[Dataset]
