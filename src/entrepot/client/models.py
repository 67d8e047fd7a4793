"""Typed resources, as the server answers them (``src/entrepot/*/models.py``).

Unknown members the server may add later are kept (``extra="allow"``), so an
older SDK reads a newer server. JSON is parsed with the standard library, so
integers in record data stay exact at any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Json = dict[str, Any]


class Resource(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class CredentialRef(Resource):
    kind: str  # "api_key" or "access_token"
    id: str


class AppRef(Resource):
    id: str
    name: str
    org: str


class LiveGrant(Resource):
    id: str
    dataset: str
    scopes: list[str]
    fields: list[str] | None = None
    row_filter: dict[str, Any] | None = None
    expires_at: datetime | None = None


class Org(Resource):
    id: str
    name: str
    title: str
    created_at: datetime


class User(Resource):
    id: str
    email: str
    is_platform_admin: bool
    disabled: bool
    created_at: datetime


class Membership(Resource):
    org: str
    role: str


class Me(Resource):
    """The signed-in person (``GET /v1/users/me``, with a user's token)."""

    id: str
    email: str
    is_platform_admin: bool
    memberships: list[Membership]


class WhoAmI(Resource):
    """Who the client's credential is (``GET /v1/me``), whatever its kind."""

    kind: str  # "admin", "app" or "user"
    credential: CredentialRef
    scopes: list[str]
    app: AppRef | None = None
    user: Me | None = None
    grants: list[LiveGrant] = []


class Member(Resource):
    org: str
    user_id: str
    email: str
    role: str
    created_at: datetime


class Contact(Resource):
    name: str | None = None
    email: str | None = None
    url: str | None = None


class Dataset(Resource):
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
    license: str | None = None  # defaults: a server before migration 16 sends none
    license_url: str | None = None
    contact: Contact | None = None


class Record(Resource):
    """One record: ``data`` is the record itself; ``etag`` its strong ETag (``"<version>"``).

    ``dataset`` is filled in by the client, so ``records.update(record)`` and
    ``records.remove(record)`` know where it lives.
    """

    id: str
    version: int
    data: dict[str, Any]
    created_at: datetime | None = None
    updated_at: datetime | None = None
    dataset: str | None = None
    etag: str | None = None

    def model_post_init(self, _context: Any) -> None:
        if self.etag is None:
            self.etag = f'"{self.version}"'


class App(Resource):
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
    """A new application: ``client_secret`` is shown only here."""

    client_secret: str = Field(repr=False)


class ClientSecret(Resource):
    client_id: str
    client_secret: str = Field(repr=False)


class Key(Resource):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(Key):
    """A new API key: ``key`` (the secret) is shown only here."""

    key: str = Field(repr=False)


class KeyRotated(KeyCreated):
    replaces: str
    old_key_expires_at: datetime


class AccessRequest(Resource):
    id: str
    dataset: str
    app: str
    scopes: list[str]
    reason: str
    status: str
    note: str | None
    requested_by: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    grant_id: str | None
    app_name: str | None = None  # the requesting app's name and organisation
    app_org: str | None = None


class Grant(Resource):
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
    status: str


class RemovedDataset(Resource):
    dataset: str
    removed_at: datetime
    reason: str


class Webhook(Resource):
    id: str
    app: str
    url: str
    datasets: list[str]
    events: list[str]
    disabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    removed_datasets: list[RemovedDataset] = Field(default_factory=list)
    previous_secret_expires_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(Webhook):
    """A new webhook: ``secret`` (``whsec_...``, for :func:`verify_webhook`) is shown only here."""

    secret: str = Field(repr=False)


class SecretRotated(Resource):
    secret: str = Field(repr=False)
    previous_secret_expires_at: datetime | None


class Delivery(Resource):
    id: str
    webhook_id: str
    message_id: str
    dataset: str
    seq: int
    record_id: str
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_response: str | None
    payload: dict[str, Any]
    created_at: datetime
    delivered_at: datetime | None


class Replayed(Resource):
    enqueued: int
    from_seq: int
    through_seq: int
    next_from_seq: int | None


class AuditEntry(Resource):
    id: int
    at: datetime
    actor: str
    app_id: str | None
    org_id: str | None
    action: str
    target: str | None
    outcome: str
    status: int | None
    request_id: str | None
    ip: str | None
    details: dict[str, Any]


class Plan(Resource):
    name: str
    rate_per_second: float
    burst: int
    daily_quota: int | None
    monthly_quota: int | None
    created_at: datetime
    updated_at: datetime


class UsageRow(Resource):
    period: datetime
    endpoint_class: str
    status: int
    count: int
    dataset: str | None = None  # None: a route without a dataset


class Usage(Resource):
    app: str
    granularity: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    total: int
    data: list[UsageRow]
    dataset: str | None = None


class DatasetUsageRow(Resource):
    period: datetime
    app: str
    endpoint_class: str
    status: int
    count: int


class DatasetUsage(Resource):
    dataset: str
    granularity: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    total: int
    data: list[DatasetUsageRow]


class Change(Resource):
    """One feed entry: ``op`` is ``upsert`` or ``delete`` (``data`` is None for a delete)."""

    seq: int
    op: str
    id: str
    version: int
    data: dict[str, Any] | None = None
    at: datetime


class ChangePage(Resource):
    changes: list[Change]
    last_seq: int
    incarnation: str | None = None


class StreamTicket(Resource):
    """Opens one dataset's event stream as you until ``expires_at``: give ``url`` to a
    browser's ``EventSource`` (a secret until then: keep it out of logs)."""

    ticket: str
    expires_at: datetime
    url: str


class ImportError_(Resource):
    line: int
    errors: list[dict[str, Any]]


class ImportReport(Resource):
    inserted: int
    updated: int
    failed: int
    errors: list[ImportError_] = Field(default_factory=list)


R = TypeVar("R")


@dataclass(frozen=True)
class Page(Generic[R]):
    """One page of a list: its items and the cursor of the next page (None at the end)."""

    data: list[R]
    next_cursor: str | None


@dataclass(frozen=True)
class Checkpoint:
    """Where a feed follower stands: every change up to ``seq`` has been handled."""

    seq: int
    incarnation: str | None


@dataclass(frozen=True)
class Transfer:
    """Progress of an import or an export: bytes and records (lines) so far."""

    bytes: int
    records: int


@dataclass(frozen=True)
class ExportResult:
    """A finished export: ``seq``/``incarnation`` are the feed position the snapshot equals.

    ``records``: the lines of an NDJSON or CSV export (the CSV header too); None for
    Parquet and Arrow, whose row count their own metadata holds."""

    seq: int
    incarnation: str | None
    bytes: int
    records: int | None


__all__ = [
    "AccessRequest",
    "App",
    "AppCreated",
    "AuditEntry",
    "Change",
    "ChangePage",
    "Checkpoint",
    "ClientSecret",
    "Dataset",
    "Delivery",
    "ExportResult",
    "Grant",
    "ImportReport",
    "Json",
    "Key",
    "KeyCreated",
    "KeyRotated",
    "Me",
    "Member",
    "Membership",
    "Org",
    "Page",
    "Plan",
    "Record",
    "Replayed",
    "SecretRotated",
    "Transfer",
    "Usage",
    "UsageRow",
    "User",
    "Webhook",
    "WebhookCreated",
]
