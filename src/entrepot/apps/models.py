"""Request and response models for applications and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from entrepot.fields import SLUG, Text
from entrepot.limits.models import PLAN_NAME

Scope = Annotated[
    str,
    StringConstraints(
        pattern=r"^(datasets:read|records:read|records:write|changes:read|webhooks:manage|admin)$"
    ),
]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^https?://\S+$")]


class AppCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org: str = Field(pattern=SLUG)
    name: Text = Field(min_length=1, max_length=100)
    description: Text = Field(default="", max_length=2000)
    redirect_uris: list[Uri] = Field(default_factory=list, max_length=20)
    scopes: list[Scope] | None = Field(
        default=None, description="Scopes the app may hold (default: read-only scopes)."
    )


class AppPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Text | None = Field(default=None, max_length=2000)
    redirect_uris: list[Uri] | None = Field(default=None, max_length=20)
    scopes: list[Scope] | None = None
    disabled: bool | None = None
    plan: str | None = Field(
        default=None, pattern=PLAN_NAME, description="Platform admins only: the app's plan."
    )


class App(BaseModel):
    id: str
    org: str
    name: str
    description: str
    client_id: str
    redirect_uris: list[str]
    scopes: list[str]
    plan: str
    disabled: bool
    created_at: datetime


class AppCreated(App):
    client_secret: str = Field(description="Shown only in this response.")


class ClientSecret(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown only in this response.")


class AppPage(BaseModel):
    data: list[App]
    next_cursor: str | None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=100)
    scopes: list[Scope] | None = Field(default=None, description="A subset of the app's scopes.")
    expires_at: datetime | None = None


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: int = Field(
        default=86_400,
        ge=0,
        description="How long the old key keeps working alongside the new one.",
    )


class Key(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(Key):
    key: str = Field(description="Shown only in this response; stored as a SHA-256 digest.")


class KeyRotated(KeyCreated):
    replaces: str = Field(description="The id of the key this one replaces.")
    old_key_expires_at: datetime = Field(description="When the replaced key stops working.")


class KeyPage(BaseModel):
    data: list[Key]
    next_cursor: str | None
