"""``verify_webhook``: Standard Webhooks signatures, as the server signs them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from entrepot.client import WebhookVerificationError, verify_webhook
from entrepot.webhooks import signing

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 24).decode()
BODY = json.dumps({"type": "record.created", "timestamp": "2026-01-01T00:00:00Z", "data": {}})
NOW = 1_767_225_600


def delivery(secrets: list[str], body: str = BODY, at: int = NOW) -> dict[str, str]:
    return signing.headers(secrets, "msg_1", at, body.encode())


def test_a_delivery_signed_by_the_server_verifies_and_its_body_is_returned() -> None:
    event = verify_webhook(SECRET, delivery([SECRET]), BODY.encode(), now=NOW)
    assert event["type"] == "record.created"


def test_headers_are_matched_whatever_their_case() -> None:
    headers = {k.title(): v for k, v in delivery([SECRET]).items()}
    assert verify_webhook(SECRET, headers, BODY, now=NOW)["type"] == "record.created"


def test_it_agrees_with_the_standard_webhooks_reference_library() -> None:
    reference = Webhook(SECRET)
    signature = reference.sign("msg_1", datetime.fromtimestamp(NOW, UTC), BODY)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    assert verify_webhook(SECRET, headers, BODY, now=NOW)["type"] == "record.created"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b.replace("created", "deleted")),
        lambda h, b: ({**h, "webhook-id": "msg_2"}, b),
        lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b),
        lambda h, b: ({**h, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}, b),
        lambda h, b: ({**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}, b),
    ],
    ids=["body", "id", "timestamp", "signature", "version"],
)
def test_anything_tampered_with_is_refused(tamper: object) -> None:
    headers, body = tamper(delivery([SECRET]), BODY)  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, headers, body, now=NOW)


def test_a_delivery_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify_webhook(SECRET, delivery([OTHER]), BODY, now=NOW)


@pytest.mark.parametrize("age", [-301, 301, 10_000])
def test_a_stale_or_future_timestamp_is_refused(age: int) -> None:
    headers = delivery([SECRET], at=NOW - age)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(SECRET, headers, BODY, now=NOW)
    assert verify_webhook(SECRET, headers, BODY, now=NOW, tolerance=abs(age) + 1)


def test_during_a_rotation_either_signature_matches() -> None:
    both = delivery([OTHER, SECRET])
    assert " " in both["webhook-signature"]
    assert verify_webhook(SECRET, both, BODY, now=NOW)
    assert verify_webhook(OTHER, both, BODY, now=NOW)


def test_the_receiver_may_accept_several_secrets_of_its_own() -> None:
    assert verify_webhook([OTHER, SECRET], delivery([SECRET]), BODY, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing: str) -> None:
    headers = {k: v for k, v in delivery([SECRET]).items() if k != missing}
    with pytest.raises(WebhookVerificationError, match=missing):
        verify_webhook(SECRET, headers, BODY, now=NOW)


def test_a_non_numeric_timestamp_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="integer"):
        verify_webhook(SECRET, {**delivery([SECRET]), "webhook-timestamp": "soon"}, BODY, now=NOW)


def test_a_secret_that_is_not_base64_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        verify_webhook("whsec_***", delivery([SECRET]), BODY, now=NOW)
