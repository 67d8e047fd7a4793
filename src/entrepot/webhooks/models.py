"""Request and response models for webhooks and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from entrepot.fields import SLUG

Event = Literal["record.created", "record.updated", "record.deleted"]
EVENTS: tuple[Event, ...] = ("record.created", "record.updated", "record.deleted")
DeliveryStatus = Literal["pending", "delivering", "delivered", "failed", "cancelled"]

Url = Field(min_length=1, max_length=2000, description="http(s) URL receiving the POSTs.")
DatasetName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MAX_DATASETS = 100
MAX_OVERLAP_SECONDS = 30 * 86_400


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Url
    datasets: list[DatasetName] = Field(
        min_length=1, max_length=MAX_DATASETS, description="Dataset names the webhook follows."
    )
    events: list[Event] = Field(default_factory=lambda: list(EVENTS), min_length=1, max_length=3)


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    datasets: list[DatasetName] | None = Field(default=None, min_length=1, max_length=MAX_DATASETS)
    events: list[Event] | None = Field(default=None, min_length=1, max_length=3)
    disabled: bool | None = Field(
        default=None,
        description="true pauses deliveries; false resumes them, including those cancelled "
        "when the webhook was disabled.",
    )


class RemovedDataset(BaseModel):
    dataset: str
    removed_at: datetime
    reason: str


class Webhook(BaseModel):
    id: str
    app: str
    url: str
    datasets: list[str]
    events: list[str]
    disabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    removed_datasets: list[RemovedDataset] = Field(
        description="Datasets this webhook followed until they were deleted (the last 20); a "
        "webhook left following none is disabled with that reason."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="While set and in the future, deliveries carry a second signature made "
        "with the previous secret."
    )
    created_at: datetime
    updated_at: datetime


class WebhookCreated(Webhook):
    secret: str = Field(description="whsec_ + base64; shown only here and on rotation.")


class WebhookPage(BaseModel):
    data: list[Webhook]
    next_cursor: str | None


class Delivery(BaseModel):
    id: str
    webhook_id: str
    message_id: str = Field(description="The webhook-id header, the same on every attempt.")
    dataset: str
    seq: int
    record_id: str
    event: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_response: str | None = Field(description="The start of the last response body (1 KB).")
    payload: dict[str, Any]
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    data: list[Delivery]
    next_cursor: str | None


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(pattern=SLUG)
    from_seq: int = Field(ge=1, le=2**62, description="Re-deliver changes with seq >= from_seq.")


class Replayed(BaseModel):
    enqueued: int = Field(description="Deliveries queued (events already queued are skipped).")
    from_seq: int
    through_seq: int = Field(description="The last seq considered.")
    next_from_seq: int | None = Field(
        description="Set when more events remain: call again with this from_seq."
    )


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: int = Field(
        default=86_400,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="How long deliveries also carry a signature made with the old secret.",
    )


class SecretRotated(BaseModel):
    secret: str = Field(description="The new secret; shown only here.")
    previous_secret_expires_at: datetime | None
