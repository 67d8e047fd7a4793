"""Clients that hold a server's bulk paths open: a stalled export reader and a
trickling importer, over raw sockets. Used by the starvation test and by
``bench/starvation.py``."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

TCP_CLOSE_WAIT, TCP_CLOSE = 8, 7  # tcpi_state once the peer has closed its side


@dataclass(frozen=True)
class Held:
    """What the server answered (its status, "none" if nothing yet) and, if it cut the
    connection while the client held it, after how many seconds."""

    answer: str
    cut_after: float | None


def _open(port: int, request: bytes) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: stays small
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    sock.setblocking(False)
    return sock


def _status(head: bytes) -> str:
    parts = head.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 else "none"


def peer_closed(sock: socket.socket) -> bool:
    """Whether the server has closed the connection, without reading what it sent."""
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    return state in (TCP_CLOSE_WAIT, TCP_CLOSE)


async def stalled_export(port: int, token: str, ds: str, hold: float) -> Held:
    """Ask for an export, read its first bytes, then read nothing more for ``hold`` s."""
    request = (
        f"GET /v1/datasets/{ds}/export HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    sock = _open(port, request)
    try:
        try:
            head = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 64), hold)
        except TimeoutError:
            return Held("none", None)
        answer = _status(head)
        while answer == "200" and time.monotonic() - started < hold:
            if peer_closed(sock):
                return Held(answer, time.monotonic() - started)
            await asyncio.sleep(0.1)
        return Held(answer, None)
    finally:
        sock.close()


async def trickling_import(port: int, token: str, ds: str, hold: float) -> Held:
    """Start an NDJSON import of a big body and send eight bytes of it a second."""
    head = (
        f"POST /v1/datasets/{ds}/import?mode=upsert HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/x-ndjson\r\n"
        "Content-Length: 100000000\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    sock = _open(port, head)
    try:
        line = b'{"sku":"trickle","name":"t","price":1,"region":"eu"}\n'
        sent = 0
        while time.monotonic() - started < hold:
            try:
                await loop.sock_sendall(sock, line[sent % len(line) :][:8])
                sent += 8
                answer = await asyncio.wait_for(loop.sock_recv(sock, 4096), 1.0)
            except TimeoutError:
                continue
            except OSError:
                return Held("none", time.monotonic() - started)
            if not answer:
                return Held("none", time.monotonic() - started)
            status = _status(answer)
            return Held(status, time.monotonic() - started if status == "408" else None)
        return Held("none", None)
    finally:
        sock.close()
