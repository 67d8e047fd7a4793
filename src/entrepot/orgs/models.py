"""Request and response models for the organisation endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from entrepot.fields import SLUG, Page, Text


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=SLUG, description="URL slug, unique on the platform.")
    title: Text = Field(min_length=1, max_length=200)


class Org(BaseModel):
    id: str
    name: str
    title: str
    created_at: datetime


class OrgPage(Page):
    data: list[Org]
