"""One keep-alive HTTP client per destination, so deliveries reuse their connections.

A connection is opened to the address the SSRF guard approved for that
attempt (the request URL names the checked IP, see :mod:`entrepot.webhooks.ssrf`),
and httpx pools connections by that URL's origin: a kept connection serves
only later attempts whose own check approved the very same address. Clients
are keyed by the webhook URL's origin as written (scheme, host and port), so
every connection of a client was opened with the same ``Host`` and TLS server
name. Idle connections are closed after :data:`KEEPALIVE_SECONDS`, below the 5 s
most servers keep an idle connection, so a request rarely meets one the server
is closing; a client unused for :data:`IDLE_CLIENT_SECONDS` is closed.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

from entrepot.ops import tracing

CONNECT_TIMEOUT_SECONDS = 5.0
KEEPALIVE_SECONDS = 4.0
IDLE_CLIENT_SECONDS = 300.0


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Clients:
    def __init__(self, timeout: float, connections: int) -> None:
        self.timeout = timeout
        self.connections = connections
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._used: dict[str, float] = {}

    def for_url(self, url: str) -> httpx.AsyncClient:
        key = origin(url)
        self._used[key] = time.monotonic()
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._new()
        return client

    def _new(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT_SECONDS, self.timeout)),
            limits=httpx.Limits(
                max_connections=self.connections,
                max_keepalive_connections=self.connections,
                keepalive_expiry=KEEPALIVE_SECONDS,
            ),
            trust_env=False,
        )
        tracing.instrument_client(client)
        return client

    async def close_idle(self, busy: set[str]) -> int:
        """Close the clients unused for a while (none whose origin is in ``busy``)."""
        now = time.monotonic()
        stale = [
            key
            for key, used in self._used.items()
            if now - used > IDLE_CLIENT_SECONDS and key not in busy
        ]
        for key in stale:
            self._used.pop(key, None)
            client = self._clients.pop(key, None)
            if client is not None:
                await client.aclose()
        return len(stale)

    async def aclose(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        self._used.clear()
        for client in clients:
            await client.aclose()
