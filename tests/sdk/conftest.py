"""The SDK's suite runs against ``entrepot serve`` over TCP, started once for the suite,
and a misbehaving proxy in front of it (proxy.py)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from entrepot.client import Client, RetryPolicy
from tests.docs.conftest import first_server
from tests.e2e.test_serve import serving
from tests.sdk.proxy import Proxy

__all__ = ["first_server"]

ADMIN = "sdk-admin-" + uuid.uuid4().hex
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=5)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "name": {"type": "string"},
        "price": {"type": "number", "minimum": 0},
        "region": {"type": "string"},
    },
    "required": ["sku", "name"],
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# Package scope: one server for tests/sdk and one for tests/cli (which imports this), each
# gone with its package, so their connections are not held through the rest of the run.
@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, fresh_database: object) -> Iterator[str]:
    """One `entrepot serve` (uvicorn on a free port) for the whole SDK (or CLI) suite."""
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "console",
        "ENTREPOT_LOG_LEVEL": "warning",
        "ENTREPOT_POOL_MAX_SIZE": "6",  # a light footprint on a shared PostgreSQL
        "ENTREPOT_ACCESS_TOKEN_TTL_SECONDS": "60",
        "ENTREPOT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "ENTREPOT_WEBHOOK_RETRY_SCHEDULE": "0,1,1",
    }
    log: Path = tmp_path_factory.mktemp("sdk-server") / "serve.log"
    with serving(env, log=log) as base:
        with Client(base, ADMIN) as admin:
            admin.plans.update("default", rate_per_second=100_000, burst=100_000)
        yield base


class Receiver:
    """A webhook endpoint on loopback that keeps every delivery (headers, raw body)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.arrived:
                    receiver.deliveries.append((dict(self.headers.items()), body))
                    receiver.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.deliveries) >= count, timeout):
                raise AssertionError(f"{len(self.deliveries)} of {count} deliveries arrived")
            return list(self.deliveries)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()
        thread.join(10)


@pytest.fixture(scope="package")
def proxy(server: str) -> Iterator[Proxy]:
    host, port = server.removeprefix("http://").split(":")
    with Proxy(host, int(port)).running() as running:
        yield running


@pytest.fixture
def through(proxy: Proxy) -> Iterator[Proxy]:
    """The proxy, with no commands left over and an empty log."""
    proxy.reset()
    yield proxy
    proxy.reset()


@pytest.fixture
def admin(server: str) -> Iterator[Client]:
    with Client(server, ADMIN, retry=FAST) as client:
        yield client


@pytest.fixture
def dataset(admin: Client) -> str:
    """A fresh public dataset (platform-assigned ids) in a fresh org."""
    org = admin.orgs.create(unique("org"), "Org")
    return admin.datasets.create(
        unique("ds"), org=org.name, title="Products", schema=SCHEMA, visibility="public"
    ).name


@pytest.fixture
def keyed_dataset(admin: Client) -> str:
    """A fresh dataset whose records are keyed by ``sku``."""
    org = admin.orgs.create(unique("org"), "Org")
    return admin.datasets.create(
        unique("ds"), org=org.name, title="Products", schema=SCHEMA, primary_key="sku"
    ).name
