"""The HTTP/1.1 client deliveries go through: kept-alive connections per destination.

Why not httpx: profiled at full load (bench/webhooks.py, docs/webhooks.md), a
delivery through httpx cost about 3 ms of CPU, most of it in its connection
pool (every request polls every pooled socket) and h11's pure-Python parsing,
capping one worker at ~150 deliveries/s. A delivery needs one thing: POST a
small body to an address the SSRF guard just approved and read the status,
``Retry-After`` and the first kilobyte of the answer. This does that over
asyncio protocols with httptools' C parser (uvicorn's), at a fraction of the cost.

Connections are pooled by destination: (scheme, checked address, port, TLS
server name). A kept connection therefore only ever serves attempts whose own
check approved the very same address with the same name, so reuse cannot
bypass the guard (:mod:`entrepot.webhooks.ssrf`). An idle connection is closed
after :data:`KEEPALIVE_SECONDS`, below the 5 s most servers keep one, and at
once when the server closes it; an answer longer than :data:`DRAIN_LIMIT` or
one saying ``Connection: close`` ends its connection. Redirects are answers
like any other (never followed).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass, field
from typing import cast

import httptools

KEEPALIVE_SECONDS = 4.0
KEEP_BYTES = 1024  # of an answer's body, for the delivery log
DRAIN_LIMIT = 64 * 1024  # read this much of a body to reuse the connection; beyond, close it
IDLE_POOL_SECONDS = 300.0

Destination = tuple[str, str, int, str | None]  # scheme, address, port, TLS server name


class DeliveryError(Exception):
    """The attempt got no answer: the connection failed or broke off."""


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: str | None
    body: bytes  # at most KEEP_BYTES


class _Connection(asyncio.Protocol):
    """One connection; one request at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self._waiter: asyncio.Future[Answer] | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._retry_after: str | None = None
        self._header = b""
        self._body = bytearray()
        self._read = 0
        self._headers_done = False
        self._complete = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(DeliveryError(f"RemoteProtocolError: {exc}"))
            self.close()
            return
        if self._read > DRAIN_LIMIT and self._waiter is not None:
            self._answer()  # long enough: answer now, and never reuse this connection
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            if self._headers_done:  # a body ended by the close (no length given)
                self._answer()
            else:
                reason = f": {exc}" if exc else ""
                self._fail(DeliveryError(f"RemoteProtocolError: server disconnected{reason}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._read += len(body)
        if len(self._body) < KEEP_BYTES:
            self._body += body[: KEEP_BYTES - len(self._body)]

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer: the real one follows
            self._reset()
            return
        self._complete = True
        if not self._parser.should_keep_alive():
            self.closed = True  # served this answer; never again
        self._answer()

    # ours
    def _answer(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Answer(self._status, self._retry_after, bytes(self._body)))

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    @property
    def reusable(self) -> bool:
        return not self.closed and self._complete

    async def exchange(self, request: bytes) -> Answer:
        assert self.transport is not None
        self._reset()
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


@dataclass
class _Pool:
    idle: list[_Connection] = field(default_factory=list)
    used: float = field(default_factory=time.monotonic)


def _head(method: str, target: str, headers: dict[str, str], length: int) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"content-length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Transport:
    """POSTs over kept-alive connections, pooled per destination."""

    def __init__(self, connect_timeout: float) -> None:
        self.connect_timeout = connect_timeout
        self._pools: dict[Destination, _Pool] = {}
        self._tls: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def _connect(self, destination: Destination) -> _Connection:
        scheme, address, port, server_name = destination
        loop = asyncio.get_running_loop()
        tls = self._context() if scheme == "https" else None
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    _Connection,
                    host=address,
                    port=port,
                    ssl=tls,
                    # Certificates are checked against the name in the URL (or its address).
                    server_hostname=(server_name or address) if tls else None,
                )
        except TimeoutError:
            raise DeliveryError(
                f"ConnectTimeout: no connection within {self.connect_timeout:g} s"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"ConnectError: {exc}") from None
        return connection

    def _idle(self, destination: Destination) -> _Connection | None:
        pool = self._pools.get(destination)
        if pool is None:
            return None
        pool.used = time.monotonic()
        while pool.idle:
            connection = pool.idle.pop()
            if (
                not connection.closed
                and time.monotonic() - connection.idle_since < KEEPALIVE_SECONDS
            ):
                return connection
            connection.close()
        return None

    async def post(
        self,
        destination: Destination,
        target: str,
        headers: dict[str, str],
        body: bytes,
    ) -> Answer:
        """One POST of ``body`` to ``target`` (path and query) at ``destination``. The
        caller bounds the whole attempt (a cancelled one closes its connection)."""
        connection = self._idle(destination) or await self._connect(destination)
        request = _head("POST", target, headers, len(body)) + body
        answered = False
        try:
            answer = await connection.exchange(request)
            answered = True
            return answer
        finally:
            if answered and connection.reusable:
                connection.idle_since = time.monotonic()
                self._pools.setdefault(destination, _Pool()).idle.append(connection)
            else:
                connection.close()

    def close_idle(self) -> int:
        """Close pools unused for a while, and expired idle connections; how many pools."""
        now = time.monotonic()
        gone = 0
        for destination, pool in list(self._pools.items()):
            keep = []
            for connection in pool.idle:
                if connection.closed or now - connection.idle_since >= KEEPALIVE_SECONDS:
                    connection.close()
                else:
                    keep.append(connection)
            pool.idle = keep
            if not keep and now - pool.used > IDLE_POOL_SECONDS:
                del self._pools[destination]
                gone += 1
        return gone

    def close(self) -> None:
        for pool in self._pools.values():
            for connection in pool.idle:
                with contextlib.suppress(Exception):
                    connection.close()
        self._pools.clear()
