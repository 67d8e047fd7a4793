"""HEAD and client aborts on a real socket, through the real server (uvicorn)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.test_serve import serving

pytestmark = pytest.mark.slow

TOKEN = "e2e-edge-token-" + "x" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def read_head(sock: socket.socket) -> bytes:
    """Bytes up to the end of one response's headers (a HEAD answer has nothing after)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def log_lines(log: Path) -> list[dict[str, object]]:
    lines = []
    for raw in log.read_bytes().splitlines():
        if raw.startswith(b"{"):
            lines.append(orjson.loads(raw))
    return lines


def test_head_and_an_abandoned_body_on_the_wire(tmp_path: Path, fresh_database: object) -> None:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": TOKEN,
        "ENTREPOT_LOG_FORMAT": "json",
        "ENTREPOT_LOG_LEVEL": "info",
    }
    log = tmp_path / "serve.log"
    with serving(env, log=log) as base:
        assert httpx.post(f"{base}/v1/orgs", json={"name": "acme", "title": "A"}, headers=AUTH)
        schema = {"type": "object", "properties": {"k": {"type": "string"}}, "required": ["k"]}
        created = httpx.post(
            f"{base}/v1/datasets",
            json={
                "name": "things",
                "org": "acme",
                "title": "T",
                "schema": schema,
                "primary_key": "k",
            },
            headers=AUTH,
        )
        assert created.status_code == 201, created.text
        rows = b"".join(orjson.dumps({"k": str(n)}) + b"\n" for n in range(5000))
        imported = httpx.post(
            f"{base}/v1/datasets/things/import",
            content=rows,
            headers={**AUTH, "Content-Type": "application/x-ndjson"},
        )
        assert imported.status_code == 200, imported.text

        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            # A streamed answer to HEAD, then a second request on the same connection:
            # any body byte (or chunk framing) sent for the HEAD would corrupt the second.
            sock.sendall(
                f"HEAD /v1/datasets/things/export HTTP/1.1\r\nHost: t\r\n"
                f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
            )
            head = read_head(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"application/x-ndjson" in head
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            health = read_head(sock)
            assert health.startswith(b"HTTP/1.1 200"), health

        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                f"POST /v1/datasets/things/records HTTP/1.1\r\nHost: t\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                f"X-Request-ID: wire-abort\r\nContent-Length: 1000\r\n\r\n"
                '{"k": "half'.encode()
            )
            time.sleep(0.3)
        deadline = time.monotonic() + 10
        while not any(e.get("event") == "client_aborted" for e in log_lines(log)):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert httpx.get(f"{base}/v1/datasets/things/records/half", headers=AUTH).status_code == 404

    lines = log_lines(log)
    [aborted] = [e for e in lines if e.get("event") == "client_aborted"]
    assert (aborted["level"], aborted["request_id"]) == ("info", "wire-abort")
    [access] = [e for e in lines if e.get("request_id") == "wire-abort" and e["event"] == "request"]
    assert access["status"] == 499
    heads = [e for e in lines if e.get("event") == "request" and e.get("method") == "HEAD"]
    assert [e["status"] for e in heads] == [200]
    text = log.read_text()
    assert "Traceback" not in text, text
    assert not [e for e in lines if e.get("level") in ("error", "critical")], text
