"""Verifying webhook deliveries (Standard Webhooks, as ``entrepot.webhooks.signing`` signs).

The signed content is ``"{webhook-id}.{webhook-timestamp}.{body}"``, HMAC-SHA256
keyed with the bytes of the base64 after ``whsec_``; ``webhook-signature``
lists ``v1,<base64>`` signatures separated by spaces (two during a secret
rotation). A delivery is genuine when any one matches, compared in constant
time, and its timestamp is within ``tolerance`` seconds of now (replays of old
deliveries are refused).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_TOLERANCE = 300.0


class WebhookVerificationError(Exception):
    """The delivery is not proven genuine: refuse it (answer 4xx)."""


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing {name} header")


def sign_webhook(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of a delivery (what a sender puts in webhook-signature)."""
    signed = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    return (
        "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()
    )


def verify_webhook(
    secret: str | list[str],
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's signature and age; return its parsed body (``{type, timestamp, data}``).

    ``body`` must be the raw bytes received, before any JSON parsing. ``secret``
    may be a list (accept any of several secrets while you rotate yours).
    Raises :class:`WebhookVerificationError` when it is not genuine.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    message_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    expected = [
        sign_webhook(s, message_id, timestamp, raw).encode()
        for s in ([secret] if isinstance(secret, str) else secret)
    ]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version != "v1" or not value:
            continue
        given = candidate.encode()
        if any(hmac.compare_digest(given, want) for want in expected):  # constant time
            try:
                parsed = json.loads(raw)
            except ValueError:
                raise WebhookVerificationError("the body is not JSON") from None
            if not isinstance(parsed, dict):
                raise WebhookVerificationError("the body is not a JSON object")
            return parsed
    raise WebhookVerificationError("no signature matches")


__all__ = ["WebhookVerificationError", "sign_webhook", "verify_webhook"]
