"""How webhooks and deliveries are shown: API documents and audit-safe URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

from entrepot.webhooks.deliveries_repository import Delivery
from entrepot.webhooks.models import EVENTS
from entrepot.webhooks.repository import Webhook


def webhook_out(row: Webhook) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "app": str(row.app_id),
        "url": row.url,
        "datasets": list(row.datasets),
        "events": list(row.events),
        "disabled": row.disabled_at is not None,
        "disabled_at": row.disabled_at,
        "disabled_reason": row.disabled_reason,
        "removed_datasets": orjson.loads(row.removed_datasets),
        "previous_secret_expires_at": row.previous_secret_expires_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def delivery_out(row: Delivery) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "webhook_id": str(row.webhook_id),
        "message_id": row.message_id,
        "dataset": row.dataset,
        "seq": row.seq,
        "record_id": row.record_id,
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at,
        "last_attempt_at": row.last_attempt_at,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "last_response": row.last_response,
        "payload": orjson.loads(row.payload),
        "created_at": row.created_at,
        "delivered_at": row.delivered_at,
    }


def shown_url(url: str) -> str:
    """The URL for the audit log: no query string (receivers sometimes put tokens there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def ordered_events(events: list[str]) -> list[str]:
    """The event types in their canonical order, each once."""
    return [e for e in EVENTS if e in set(events)]
