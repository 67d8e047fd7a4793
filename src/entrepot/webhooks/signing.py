"""Standard Webhooks signatures (https://www.standardwebhooks.com).

A secret is ``whsec_`` + base64 of random bytes; the HMAC key is those bytes.
Each attempt is signed over ``"{webhook-id}.{webhook-timestamp}.{body}"`` and
the ``webhook-signature`` header lists ``v1,<base64 HMAC-SHA256>`` once per
secret in force, space-separated (two during a rotation's overlap).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    raw = secret.removeprefix(PREFIX)
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(
    secrets_in_force: Iterable[str], message_id: str, timestamp: int, body: bytes
) -> str:
    return " ".join(sign(s, message_id, timestamp, body) for s in secrets_in_force)


def headers(
    secrets_in_force: Iterable[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_in_force, message_id, timestamp, body),
    }
