"""Webhook settings, parsed once from :class:`~entrepot.settings.Settings`."""

from __future__ import annotations

from dataclasses import dataclass

from entrepot.settings import Settings
from entrepot.webhooks.ssrf import Network, parse_networks

# Standard Webhooks' schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
STANDARD_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
RETRY_AFTER_CAP_SECONDS = 6 * 3600.0
LEASE_MARGIN_SECONDS = 30.0
STUCK_AFTER_SECONDS = 300.0
LOG_RETENTION_SECONDS = 30 * 86_400.0  # delivered and cancelled deliveries; failed ones stay


def parse_schedule(raw: str) -> tuple[float, ...]:
    """``"0,5,300"``: seconds before attempt 1, 2, 3... (its length is the attempt count)."""
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"ENTREPOT_WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, not {raw!r}"
        ) from None
    if not delays or any(d < 0 or d != d or d > 7 * 86_400 for d in delays):
        raise ValueError(
            f"ENTREPOT_WEBHOOK_RETRY_SCHEDULE needs at least one delay in [0, 7 days]: {raw!r}"
        )
    return delays


@dataclass(frozen=True)
class WebhookConfig:
    schedule: tuple[float, ...]
    networks: tuple[Network, ...]
    concurrency: int
    timeout: float
    endpoint_concurrency: int = 64

    @property
    def max_attempts(self) -> int:
        return len(self.schedule)

    @property
    def lease_seconds(self) -> float:
        return self.timeout + LEASE_MARGIN_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookConfig:
        try:
            networks = parse_networks(settings.webhook_allowed_networks)
        except ValueError as exc:
            raise ValueError(f"ENTREPOT_WEBHOOK_ALLOWED_NETWORKS: {exc}") from None
        return cls(
            schedule=parse_schedule(settings.webhook_retry_schedule),
            networks=networks,
            concurrency=settings.webhook_concurrency,
            timeout=settings.webhook_timeout_seconds,
            endpoint_concurrency=min(
                settings.webhook_endpoint_concurrency, settings.webhook_concurrency
            ),
        )
