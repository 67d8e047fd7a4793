"""The deliveries' HTTP client against a real server on 127.0.0.1: keep-alive per
destination, answers of every framing, and the connection given up whenever it cannot
serve the next attempt."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from entrepot.webhooks.transport import KEEP_BYTES, DeliveryError, Transport

Answering = Callable[[bytes], Awaitable[bytes | None]]  # a request's head -> raw answer


@dataclass
class Server:
    """Reads one request at a time per connection and writes what ``answer`` says (None:
    hang up without answering); counts connections and requests."""

    answer: Answering
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                raw = await self.answer(head)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if b"connection: close" in raw.lower() or raw.startswith(b"HTTP/1.0"):
                    break  # the answer ends with the connection
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        """Every connection's handler ended, so nothing is left for the collector."""
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async def no_content(head: bytes) -> bytes:
        return b"HTTP/1.1 204 No Content\r\n\r\n"

    s = Server(no_content)
    listening = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    s.port = listening.sockets[0].getsockname()[1]
    try:
        yield s
    finally:
        listening.close()
        await s.close()
        await listening.wait_closed()


def at(server: Server) -> tuple[str, str, int, None]:
    return ("http", "127.0.0.1", server.port, None)


HEADERS = {"host": "example.test", "content-type": "application/json"}


async def test_attempts_to_one_destination_reuse_a_connection(server: Server) -> None:
    transport = Transport(connect_timeout=5)
    try:
        for n in range(5):
            answer = await transport.post(at(server), "/hook?n=1", dict(HEADERS), b'{"n":%d}' % n)
            assert answer.status == 204
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(b"POST /hook?n=1 HTTP/1.1\r\n")
        assert b"host: example.test\r\n" in first
        assert first.endswith(b'\r\n\r\n{"n":0}')
    finally:
        transport.close()


async def test_attempts_in_parallel_open_connections_of_their_own(server: Server) -> None:
    release = asyncio.Event()

    all_in = asyncio.Event()

    async def slow(head: bytes) -> bytes:
        if len(server.requests) == 3:
            all_in.set()
        await release.wait()
        return b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    server.answer = slow
    transport = Transport(connect_timeout=5)
    try:
        posts = [
            asyncio.create_task(transport.post(at(server), "/", dict(HEADERS), b"{}"))
            for _ in range(3)
        ]
        await asyncio.wait_for(all_in.wait(), 10)
        release.set()
        assert [(await p).body for p in posts] == [b"ok"] * 3
        assert server.connections == 3
    finally:
        transport.close()


async def test_status_retry_after_and_the_first_kilobyte_of_a_chunked_answer(
    server: Server,
) -> None:
    async def chunked(head: bytes) -> bytes:
        chunk = b"x" * 1500
        return (
            b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 30\r\n"
            b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
        )

    server.answer = chunked
    transport = Transport(connect_timeout=5)
    try:
        for _ in range(2):
            answer = await transport.post(at(server), "/", dict(HEADERS), b"{}")
            assert (answer.status, answer.retry_after) == (503, "30")
            assert answer.body == b"x" * KEEP_BYTES
        assert server.connections == 1, "a chunked answer read to its end keeps the connection"
    finally:
        transport.close()


async def test_an_answer_saying_close_or_ended_by_the_close_is_not_reused(server: Server) -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nuntil the end",  # no length: the body ends with the connection
    ]

    async def next_answer(head: bytes) -> bytes:
        return answers.pop(0) if answers else b"HTTP/1.1 204 No Content\r\n\r\n"

    server.answer = next_answer
    transport = Transport(connect_timeout=5)
    try:
        assert (await transport.post(at(server), "/", dict(HEADERS), b"{}")).status == 200
        assert server.connections == 1
        answer = await transport.post(at(server), "/", dict(HEADERS), b"{}")
        assert (answer.status, answer.body) == (200, b"until the end")
        assert (await transport.post(at(server), "/", dict(HEADERS), b"{}")).status == 204
        assert server.connections == 3
    finally:
        transport.close()


async def test_no_answer_and_no_server_are_errors_naming_what_happened(server: Server) -> None:
    async def hang_up(head: bytes) -> None:
        return None

    server.answer = hang_up
    transport = Transport(connect_timeout=5)
    try:
        with pytest.raises(DeliveryError, match="server disconnected"):
            await transport.post(at(server), "/", dict(HEADERS), b"{}")
        with pytest.raises(DeliveryError, match="ConnectError"):
            await transport.post(("http", "127.0.0.1", 9, None), "/", dict(HEADERS), b"{}")
    finally:
        transport.close()


async def test_an_attempt_cut_short_leaves_its_connection_unused(server: Server) -> None:
    never = asyncio.Event()

    async def hang(head: bytes) -> bytes:
        await never.wait()
        return b""

    server.answer = hang
    transport = Transport(connect_timeout=5)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await transport.post(at(server), "/", dict(HEADERS), b"{}")

        async def no_content(head: bytes) -> bytes:
            return b"HTTP/1.1 204 No Content\r\n\r\n"

        server.answer = no_content
        assert (await transport.post(at(server), "/", dict(HEADERS), b"{}")).status == 204
        assert server.connections == 2, "the next attempt opened a connection of its own"
    finally:
        transport.close()
