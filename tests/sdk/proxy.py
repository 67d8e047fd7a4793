"""A TCP proxy between the SDK and a real server, that misbehaves on command.

It runs its own event loop on a thread, so blocking and async clients alike
can talk through it. It understands just enough HTTP/1.1 to find where each
request starts (no pipelining: a client sends its next request once the
previous answer has arrived), and on command it:

- ``drop(n)``: forwards the next ``n`` requests, waits for the server's
  answer to begin (the server commits before it answers), then closes the
  client's connection without passing the answer on: the write happened, the
  client never heard;
- ``answer(n, status, headers, body)``: answers the next ``n`` requests itself
  (a 429 with ``Retry-After``, a 503, a 401) without forwarding them;
- ``cut_after(marker)``: passes the next answer on only up to the end of the
  first server-sent event holding ``marker``, then closes: a stream broken
  midway.

Every request head it sees is logged (``requests``), so tests can check what
was sent, and how many times.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    outcome: str  # forwarded, dropped, answered


@dataclass
class Canned:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Commands:
    drops: int = 0
    canned: list[Canned] = field(default_factory=list)
    cut: bytes | None = None


class Proxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.requests: list[Seen] = []
        self._commands = _Commands()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()  # strong references
        self.port = 0

    # -- commands (from any thread) -------------------------------------------

    def drop(self, times: int = 1) -> None:
        with self._lock:
            self._commands.drops += times

    def answer(
        self,
        times: int,
        status: int,
        *,
        reason: str = "Canned",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        with self._lock:
            self._commands.canned.extend(
                Canned(status, reason, dict(headers or {}), body) for _ in range(times)
            )

    def cut_after(self, marker: bytes) -> None:
        with self._lock:
            self._commands.cut = marker

    def reset(self) -> None:
        with self._lock:
            self._commands = _Commands()
            self.requests.clear()

    def seen(self, method: str, path_start: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.target.startswith(path_start)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ------------------------------------------------------------

    @contextlib.contextmanager
    def running(self) -> Iterator[Proxy]:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        started.result(10)
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    # -- one client connection ------------------------------------------------

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        upstream_r, upstream_w = await asyncio.open_connection(*self.upstream)
        try:
            while True:
                head = await _read_head(client_r)
                if head is None:
                    return
                method, target, headers = _parse_head(head)
                body = await _read_body(client_r, headers)
                with self._lock:
                    canned = self._commands.canned.pop(0) if self._commands.canned else None
                    drop = canned is None and self._commands.drops > 0
                    if drop:
                        self._commands.drops -= 1
                    cut = self._commands.cut if canned is None and not drop else None
                    self._commands.cut = None if cut else self._commands.cut
                outcome = "answered" if canned else "dropped" if drop else "forwarded"
                self.requests.append(Seen(method, target, headers, outcome))
                if canned is not None:
                    client_w.write(_render(canned))
                    await client_w.drain()
                    continue
                upstream_w.write(head + body)
                await upstream_w.drain()
                if drop:
                    await upstream_r.read(1)  # the answer has begun: the server committed
                    return  # close both sides, the answer unsent
                if cut is not None:
                    await _relay_until(upstream_r, client_w, cut)
                    return
                if not await _relay_response(upstream_r, client_w, method):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            for writer in (client_w, upstream_w):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return await _read_chunked(reader)
    return b""


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        parts.append(size_line)
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers, then the blank line
                line = await reader.readuntil(b"\r\n")
                parts.append(line)
                if line == b"\r\n":
                    return b"".join(parts)
        parts.append(await reader.readexactly(size + 2))


async def _relay_response(
    upstream: asyncio.StreamReader, client: asyncio.StreamWriter, method: str
) -> bool:
    """Pass one answer on; False when the connection is done (closed or not reusable)."""
    head = await _read_head(upstream)
    if head is None:
        return False
    client.write(head)
    status_line, _, _ = head.partition(b"\r\n")
    status = int(status_line.split(b" ")[1])
    _, _, headers = _parse_head(b"X / X\r\n" + head.partition(b"\r\n")[2])
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        pass
    elif "content-length" in headers:
        client.write(await upstream.readexactly(int(headers["content-length"])))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        size_line = b""
        while True:  # stream chunk by chunk (exports and long polls stay streams)
            size_line = await upstream.readuntil(b"\r\n")
            client.write(size_line)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                client.write(await upstream.readuntil(b"\r\n"))
                break
            client.write(await upstream.readexactly(size + 2))
            await client.drain()
    else:  # delimited by close
        while chunk := await upstream.read(65536):
            client.write(chunk)
        await client.drain()
        return False
    await client.drain()
    return headers.get("connection", "").lower() != "close"


async def _relay_until(
    upstream: asyncio.StreamReader, client: asyncio.StreamWriter, marker: bytes
) -> None:
    """Pass bytes on up to the end of the first event (blank line) after ``marker``."""
    seen = b""
    while chunk := await upstream.read(65536):
        seen += chunk
        at = seen.find(marker)
        end = seen.find(b"\n\n", at) if at >= 0 else -1
        if end >= 0:
            client.write(seen[: end + 2])
            await client.drain()
            return


def _render(canned: Canned) -> bytes:
    headers = {"content-length": str(len(canned.body)), **canned.headers}
    head = f"HTTP/1.1 {canned.status} {canned.reason}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    return head.encode("latin-1") + b"\r\n" + canned.body
