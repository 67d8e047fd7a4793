"""NATS with JetStream for this folder: the machine's server (127.0.0.1:4222, or
ENTREPOT_TEST_NATS_URL) for the publisher's tests; without it they are skipped naming
the package, and fail in CI, which starts it."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from tests.tools import require_answering

NATS_URL = os.environ.get("ENTREPOT_TEST_NATS_URL", "nats://127.0.0.1:4222")


@pytest.fixture(scope="session")
def nats_url() -> str:
    where = urlsplit(NATS_URL)
    require_answering(
        where.hostname or "127.0.0.1", where.port or 4222, "nats-server", "nats-server"
    )
    return NATS_URL
