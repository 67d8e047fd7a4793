"""Request and response models for plans and usage."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PLAN_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MIN_RATE = 0.0001  # one request every 2.8 hours: slower is a quota, not a rate
MAX_RATE = 1_000_000.0
MAX_BURST = 1_000_000
MAX_QUOTA = 10**15


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=PLAN_NAME)
    rate_per_second: float = Field(ge=MIN_RATE, le=MAX_RATE, allow_inf_nan=False)
    burst: int = Field(ge=1, le=MAX_BURST)
    daily_quota: int | None = Field(default=None, ge=0, le=MAX_QUOTA)
    monthly_quota: int | None = Field(default=None, ge=0, le=MAX_QUOTA)


class PlanPatch(BaseModel):
    """Fields to change; ``null`` removes a quota."""

    model_config = ConfigDict(extra="forbid")
    rate_per_second: float | None = Field(
        default=None, ge=MIN_RATE, le=MAX_RATE, allow_inf_nan=False
    )
    burst: int | None = Field(default=None, ge=1, le=MAX_BURST)
    daily_quota: int | None = Field(default=None, ge=0, le=MAX_QUOTA)
    monthly_quota: int | None = Field(default=None, ge=0, le=MAX_QUOTA)


class Plan(BaseModel):
    name: str
    rate_per_second: float
    burst: int
    daily_quota: int | None
    monthly_quota: int | None
    created_at: datetime
    updated_at: datetime


class PlanPage(BaseModel):
    data: list[Plan]
    next_cursor: str | None


Granularity = Literal["hour", "day"]


class UsageRow(BaseModel):
    period: datetime = Field(description="Start of the hour or UTC day counted.")
    endpoint_class: str
    status: int
    dataset: str | None = Field(
        description="The dataset the requests named in their path; null for routes "
        "without one (and for names that are no dataset)."
    )
    count: int


class Usage(BaseModel):
    app: str
    dataset: str | None = Field(description="The `dataset` asked for; null: every dataset.")
    granularity: Granularity
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    total: int
    data: list[UsageRow]


class DatasetUsageRow(BaseModel):
    period: datetime = Field(description="Start of the hour or UTC day counted.")
    app: str = Field(description="The id of the app that made the requests.")
    endpoint_class: str
    status: int
    count: int


class DatasetUsage(BaseModel):
    dataset: str
    granularity: Granularity
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    total: int
    data: list[DatasetUsageRow]
