"""One Settings object, read from ``ENTREPOT_*`` environment variables."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from entrepot.dsn import check_postgres_url

MIN_BOOTSTRAP_TOKEN_LENGTH = 32
DEFAULT_MIGRATION_LOCK_TIMEOUT_MS = 5_000
DEFAULT_MIGRATION_LOCK_ATTEMPTS = 10


class Settings(BaseSettings):
    # Inputs stay out of error texts: a refused bootstrap token or database URL is a secret.
    model_config = SettingsConfigDict(
        env_prefix="ENTREPOT_", extra="ignore", hide_input_in_errors=True
    )

    database_url: str | None = Field(
        default=None,
        description="postgresql:// URL (multi-host allowed). Unset: embedded PostgreSQL.",
    )
    direct_database_url: str | None = Field(
        default=None,
        description="postgresql:// URL of the server itself, for what needs a session of its "
        "own (LISTEN, migrations under their advisory lock, the start-up check) when "
        "ENTREPOT_DATABASE_URL is a pooler. Unset: ENTREPOT_DATABASE_URL.",
    )
    pooler: Literal["none", "transaction"] = Field(
        default="none",
        description="What ENTREPOT_DATABASE_URL reaches: none (PostgreSQL itself) or "
        "transaction (a transaction-mode pooler such as PgBouncer: no statement cache, no "
        "session state on pooled connections; needs ENTREPOT_DIRECT_DATABASE_URL).",
    )
    connection_check: bool = Field(
        default=True,
        description="Before serving, refuse to start when PostgreSQL cannot hold the "
        "replica's connection budget (entrepot budget); false skips the check.",
    )
    data_dir: Path = Field(default=Path("./data"), description="Embedded PostgreSQL lives here.")
    redis_url: str | None = None
    bootstrap_token: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    public_url: str | None = None
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the Prometheus listener (GET /metrics). Unset: no metrics listener.",
    )
    metrics_host: str | None = Field(
        default=None, description="Interface of the metrics listener (default: the API's host)."
    )

    migration_lock_timeout_ms: int = Field(
        default=DEFAULT_MIGRATION_LOCK_TIMEOUT_MS,
        ge=1,
        description="How long a migration statement waits for a lock before it gives up and "
        "the migration is tried again (while it waits, every query on the table queues "
        "behind it).",
    )
    migration_lock_attempts: int = Field(
        default=DEFAULT_MIGRATION_LOCK_ATTEMPTS,
        ge=1,
        le=100,
        description="How many times a migration that timed out on a lock is tried, with "
        "pauses doubling from half a second (at most 30 s), before the start fails.",
    )

    pool_min_size: int = Field(default=2, ge=0)
    pool_max_size: int = Field(
        default=10,
        ge=1,
        description="Connections per worker for requests: the largest part of the "
        "connection budget (entrepot budget).",
    )
    planned_pool_size: int = Field(
        default=4,
        ge=0,
        le=100,
        description="Of ENTREPOT_POOL_MAX_SIZE, the connections whose every statement is "
        "planned for its own values: filtered record lists run there in one round trip, "
        "without a transaction. 0, or a transaction pooler: they plan in a read-only "
        "transaction of their own instead.",
    )
    statement_timeout_ms: int = 30_000

    max_body_bytes: int = 1_048_576
    max_import_bytes: int = 64 * 1024**3
    import_batch_size: int = 2_000
    bulk_pool_size: int = Field(
        default=4,
        ge=1,
        le=100,
        description="Connections per worker for imports and exports, apart from the request "
        "pool: however slow their clients, bulk work never takes a request's connection.",
    )
    bulk_per_caller: int = Field(
        default=2,
        ge=1,
        description="Imports and exports one app (or user) may run at once per worker; "
        "more are refused with 429 and Retry-After.",
    )
    bulk_queue_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How long a bulk operation waits for a free bulk connection before 503.",
    )
    bulk_stall_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="The window over which a bulk client's pace is judged: one that moves "
        "less than ENTREPOT_BULK_MIN_BYTES_PER_SECOND through it is cut.",
    )
    bulk_min_bytes_per_second: int = Field(
        default=16_384,
        ge=0,
        description="The slowest pace an import body or export reader may keep while the "
        "server waits on it.",
    )
    list_timeout_ms: int = Field(
        default=5_000,
        ge=1,
        description="How long one list query may run before it is cancelled (400 naming the "
        "unindexed fields, or 503).",
    )
    unindexed_scan_rows: int = Field(
        default=100_000,
        ge=0,
        description="A list that no index serves is refused (400 naming the fields) on "
        "datasets estimated larger than this.",
    )
    idempotency_retention_hours: int = 24
    audit_retention_days: int = Field(
        default=0,
        ge=0,
        description="Audit rows older than this many days are dropped, a month at a time "
        "(whole monthly partitions); 0 keeps them forever.",
    )
    change_retention_hours: float = Field(
        default=168, gt=0, description="Changes older than this are compacted out of the feed."
    )
    feed_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="An idle event stream sends a comment this often."
    )
    credential_cache_seconds: float = 1.0
    catalog_cache_seconds: float = 1.0
    usage_flush_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="How often each replica adds its usage counts to the store; also how far "
        "quotas may overshoot across replicas when no Redis is configured.",
    )
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry spans, metrics and logs, and with the "
        "otel extra SQL and webhook spans and trace ids in log lines (ops/tracing.py), sent "
        "to the providers configured in the process (e.g. FASTAPI_OTEL_AUTO_CONFIGURE=true "
        "with OTEL_EXPORTER_OTLP_ENDPOINT).",
    )
    auth_failures_burst: int = Field(
        default=100,
        ge=1,
        description="Failed authentications a client address may have before it gets 429s.",
    )
    auth_failures_per_second: float = Field(
        default=2.0,
        gt=0,
        description="How fast an address's failed-authentication allowance refills.",
    )
    sign_in_failures_burst: int = Field(
        default=10, ge=1, description="Failed password sign-ins an account may have at once."
    )
    sign_in_failures_per_minute: float = Field(
        default=6.0, gt=0, description="How fast an account's failed-sign-in allowance refills."
    )
    portal_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        description="How long a portal sign-in lasts (/portal); it ends sooner at sign-out.",
    )
    portal_secure_cookies: bool = Field(
        default=False,
        description="Mark the portal's cookies Secure even on plain HTTP requests: behind a "
        "TLS-terminating proxy that does not say so in X-Forwarded-Proto. HTTPS requests "
        "always get Secure cookies.",
    )
    usage_retention_days: int = Field(
        default=400, ge=31, description="Monthly quotas without Redis are counted from usage."
    )

    issuer: str | None = Field(
        default=None,
        description="'iss' of access tokens and the OAuth metadata's issuer (RFC 8414: the "
        "platform's URL). Unset: ENTREPOT_PUBLIC_URL, else http://HOST:PORT.",
    )
    token_audience: str = "entrepot"  # noqa: S105 - an audience name, not a secret
    access_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    stream_ticket_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="How long a stream ticket may (re)open its event stream (never beyond "
        "the credential it was issued through).",
    )
    key_rotation_max_overlap_seconds: int = 30 * 86_400

    webhook_retry_schedule: str = Field(
        default="0,5,300,1800,7200,18000,36000,36000",
        description="Seconds before each delivery attempt (Standard Webhooks' schedule).",
    )
    webhook_allowed_networks: str = Field(
        default="", description="Comma-separated CIDRs webhooks may reach despite the SSRF guard."
    )
    webhook_concurrency: int = Field(
        default=256,
        ge=1,
        le=4096,
        description="Webhook deliveries in flight per worker process, all endpoints together.",
    )
    webhook_endpoint_concurrency: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="The most deliveries in flight to one endpoint per worker process (each "
        "endpoint's own limit adapts below it to its latency and errors).",
    )
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    nats_url: str | None = Field(
        default=None,
        description="nats:// URL of a NATS server with JetStream: the change feeds configured "
        "with `entrepot admin streams add` are published there (docs/jetstream.md). Unset: "
        "nothing is published.",
    )
    jetstream_lease_seconds: float = Field(
        default=10.0,
        ge=1,
        le=300,
        description="The JetStream publisher's lease: one replica publishes, renewing it a "
        "third of this often; when it dies another takes over this long after its last "
        "renewal.",
    )
    jetstream_duplicate_window_seconds: float = Field(
        default=120.0,
        ge=1,
        le=86_400,
        description="The duplicate window of the JetStream streams the publisher creates: a "
        "republish of the same change within it is dropped by JetStream (Nats-Msg-Id).",
    )
    liveness_lag_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="An event loop this many seconds late fails /healthz (for a minute after).",
    )
    liveness_grace_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Slack beyond twice its own interval before a background loop that has not "
        "come round fails /healthz (covers its store calls: at least twice the statement "
        "timeout).",
    )

    drain_seconds: float = Field(
        default=0.0,
        ge=0,
        le=3600,
        description="On SIGTERM, /readyz answers 503 at once and requests are still served "
        "this long before the server stops accepting: longer than the load balancer's "
        "health-check interval times its failure threshold.",
    )
    shutdown_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="After draining, how long requests in flight may take to finish before "
        "they are cut (long polls and event streams end at once).",
    )

    log_level: str = "info"
    log_format: str = Field(
        default="auto",
        pattern="^(auto|json|console)$",
        description="json for machines, console for people; auto: console when stderr is a "
        "terminal, else json.",
    )

    anonymous_reads: bool = Field(
        default=True,
        description="Let callers with no credential read datasets their providers made "
        "open (visibility open), rate limited per client address by the anonymous plan. "
        "false: every request needs a credential; open datasets read as public ones.",
    )

    cors_origins: str = Field(
        default="",
        description="Origins whose pages may call the API from a browser, comma-separated "
        "(https://app.example.com,http://localhost:3000), or * for any. Empty: none.",
    )

    @field_validator("bootstrap_token")
    @classmethod
    def _bootstrap_token_is_long(cls, token: SecretStr | None) -> SecretStr | None:
        """The token becomes a platform-admin key: refuse one short enough to guess."""
        if token is not None and len(token.get_secret_value()) < MIN_BOOTSTRAP_TOKEN_LENGTH:
            raise ValueError(
                f"must be at least {MIN_BOOTSTRAP_TOKEN_LENGTH} characters; make one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return token

    @field_validator("cors_origins")
    @classmethod
    def _cors_origins_are_origins(cls, value: str) -> str:
        for origin in _origins(value):
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], no path"
                )
        return value

    def token_issuer(self) -> str:
        """The issuer tokens carry and the metadata names: one value for every replica."""
        if self.issuer:
            return self.issuer
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def cors_origin_list(self) -> list[str]:
        return _origins(self.cors_origins)

    @field_validator("nats_url")
    @classmethod
    def _nats_url_is_nats(cls, url: str | None) -> str | None:
        if url and not re.fullmatch(r"(nats|tls)://[^\s/]+", url):
            raise ValueError("must be nats://HOST:PORT (or tls://HOST:PORT)")
        return url or None

    @field_validator("database_url", "direct_database_url")
    @classmethod
    def _database_url_is_postgres(cls, url: str | None) -> str | None:
        """Refuse a malformed URL at start, before anything tries to connect with it."""
        if url:
            check_postgres_url(url)
        return url

    @field_validator("direct_database_url")
    @classmethod
    def _direct_url_beside_a_url(cls, url: str | None, info: ValidationInfo) -> str | None:
        """The embedded PostgreSQL is reached directly: a second URL would split the store."""
        if url and not info.data.get("database_url"):
            raise ValueError("needs ENTREPOT_DATABASE_URL (the embedded PostgreSQL has no pooler)")
        return url

    @field_validator("pooler")
    @classmethod
    def _pooler_has_a_direct_url(cls, pooler: str, info: ValidationInfo) -> str:
        """LISTEN through a transaction pooler hears nothing, and a migration's advisory
        lock would outlive its session: both need the server itself."""
        if pooler == "transaction" and not info.data.get("direct_database_url"):
            raise ValueError(
                "transaction needs ENTREPOT_DIRECT_DATABASE_URL, the server's own URL "
                "(LISTEN and migrations need a session of their own)"
            )
        return pooler

    def direct_url(self) -> str | None:
        """Where session-bound work connects: the server itself, never a pooler."""
        return self.direct_database_url or self.database_url


_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)


def _origins(value: str) -> list[str]:
    return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
