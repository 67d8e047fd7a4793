"""Request and response models for the catalog endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from entrepot import jsonbody

SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"
FIELD_NAME = r"^[^\x00]{1,128}$"


def _storable(value: Any) -> Any:
    """Refuse what PostgreSQL text and jsonb cannot hold: NUL, lone surrogates, NaN."""
    try:
        jsonbody.check_storable(value)
        jsonbody.dumps(value)  # raises ValueError on NaN and infinities
    except jsonbody.JsonBodyError as exc:
        where = f" (at {exc.path})" if exc.path else ""
        raise ValueError(exc.message + where) from None
    except ValueError as exc:
        raise ValueError(f"not storable as JSON: {exc}") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_storable)]


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=SLUG, description="URL slug, unique on the platform.")
    title: Text = Field(min_length=1, max_length=200)


class Org(BaseModel):
    id: str
    name: str
    title: str
    created_at: datetime


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=SLUG, description="URL slug, unique on the platform.")
    org: str = Field(pattern=SLUG)
    title: Text = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=10_000)
    schema_: JsonObject = Field(alias="schema", description="JSON Schema 2020-12 for one record.")
    primary_key: Text | None = Field(default=None, pattern=FIELD_NAME)
    visibility: Literal["public", "restricted"] = "restricted"
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
    visibility: Literal["public", "restricted"] | None = None
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


class Page(BaseModel):
    next_cursor: str | None


class OrgPage(Page):
    data: list[Org]


class DatasetPage(Page):
    data: list[Dataset]
