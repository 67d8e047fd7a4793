"""Request and response models for users, login and organisation members."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from entrepot.fields import Text

MIN_PASSWORD = 12
MAX_PASSWORD = 1024

Email = Annotated[
    Text,
    StringConstraints(
        strip_whitespace=True,
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    ),
]
Role = Literal["owner", "admin", "member"]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email = Field(description="Unique on the platform, compared case-insensitively.")
    password: Text = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)
    is_platform_admin: bool = Field(
        default=False, description="Platform administrators may do everything."
    )


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disabled: bool | None = Field(
        default=None, description="A disabled user can neither log in nor use its tokens."
    )


class User(BaseModel):
    id: str
    email: str
    is_platform_admin: bool
    disabled: bool
    created_at: datetime


class Membership(BaseModel):
    org: str
    role: Role


class Me(BaseModel):
    id: str
    email: str
    is_platform_admin: bool
    memberships: list[Membership]


class Credential(BaseModel):
    kind: Literal["api_key", "access_token"]
    id: str = Field(description="The API key's id, or the access token's id (`jti`).")


class AppRef(BaseModel):
    id: str
    name: str
    org: str


class LiveGrant(BaseModel):
    id: str
    dataset: str
    scopes: list[str]
    fields: list[str] | None
    row_filter: dict[str, object] | None
    expires_at: datetime | None


class WhoAmI(BaseModel):
    """Who a credential is: what every request made with it is judged as."""

    kind: Literal["admin", "app", "user"]
    credential: Credential
    scopes: list[str] = Field(description="What the credential may do, sorted.")
    app: AppRef | None = Field(description="The application, for an app's key or token.")
    user: Me | None = Field(description="The person, for a user's token.")
    grants: list[LiveGrant] = Field(
        description="An application's grants in force now (empty for other credentials)."
    )


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Text = Field(min_length=1, max_length=320)
    password: Text = Field(min_length=1, max_length=MAX_PASSWORD)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    role: Role


class Member(BaseModel):
    org: str
    user_id: str
    email: str
    role: Role
    created_at: datetime


class MemberPage(BaseModel):
    data: list[Member]
    next_cursor: str | None
