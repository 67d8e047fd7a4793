"""Request and response models for access requests and grants."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from entrepot.fields import JsonObject, Text

GRANTABLE_SCOPES = ("datasets:read", "records:read", "records:write", "changes:read")

GrantScope = Annotated[
    str, StringConstraints(pattern=r"^(datasets:read|records:read|records:write|changes:read)$")
]
FieldName = Annotated[Text, StringConstraints(min_length=1, max_length=128)]
RequestStatus = Literal["pending", "approved", "rejected"]
GrantStatus = Literal["active", "expired", "revoked"]


class AccessRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    app: str = Field(min_length=1, max_length=64, description="The id of the requesting app.")
    scopes: list[GrantScope] = Field(
        min_length=1, max_length=4, description="What the app asks to do with the dataset."
    )
    reason: Text = Field(default="", max_length=2000)


class AccessRequestApprove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Text | None = Field(default=None, max_length=2000)
    scopes: list[GrantScope] | None = Field(
        default=None, min_length=1, max_length=4, description="A subset of the requested scopes."
    )
    fields: list[FieldName] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="The record fields the grantee may see (default: all).",
    )
    row_filter: JsonObject | None = Field(
        default=None,
        description='The rows the grantee may see, like list filters: {"price": {"lt": 50}}.',
    )
    expires_at: datetime | None = None


class AccessRequestReject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Text | None = Field(default=None, max_length=2000)


class AccessRequest(BaseModel):
    id: str
    dataset: str
    app: str
    app_name: str = Field(description="The requesting app's name, for whoever decides.")
    app_org: str = Field(description="The organisation that runs the requesting app.")
    scopes: list[str]
    reason: str
    status: RequestStatus
    note: str | None
    requested_by: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    grant_id: str | None


class AccessRequestPage(BaseModel):
    data: list[AccessRequest]
    next_cursor: str | None


class Grant(BaseModel):
    id: str
    dataset: str
    app: str
    scopes: list[str]
    fields: list[str] | None
    row_filter: dict[str, Any] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    created_by: str
    status: GrantStatus


class GrantPage(BaseModel):
    data: list[Grant]
    next_cursor: str | None
