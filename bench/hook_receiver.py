"""A webhook receiver for bench/webhooks.py, in a process of its own.

    python bench/hook_receiver.py --port 8123 --secrets secrets.json --out arrivals.ndjson

Serves ``POST /hook/{endpoint}`` under uvicorn (uvloop, httptools, keep-alive):
each delivery is verified with the `standardwebhooks` library against that
endpoint's secret (``secrets.json``: {"endpoint": "whsec_..."}), answered 204
(400 when verification fails), and noted with its arrival time
(``time.monotonic()``: one clock for every process on the machine, so it
compares with the writers' acknowledgement times). ``GET /count`` answers how
many deliveries were accepted so far. On shutdown (SIGTERM) every arrival is
written to ``--out``, one JSON array a line: [endpoint, webhook-id, record id,
version, seq, arrival].
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Receiver:
    def __init__(self, secrets: dict[str, str], out: Path) -> None:
        self.verifiers = {endpoint: Webhook(secret) for endpoint, secret in secrets.items()}
        self.out = out
        self.arrivals: list[tuple[int, str, str, int, int, float]] = []
        self.rejected = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        arrived = time.monotonic()
        path: str = scope["path"]
        if scope["method"] == "GET" and path == "/count":
            body = orjson.dumps({"accepted": len(self.arrivals), "rejected": self.rejected})
            await respond(send, 200, body)
            return
        status = self.note(path, b"".join(chunks), scope["headers"], arrived)
        await respond(send, status, b"")

    def note(self, path: str, raw: bytes, pairs: list[tuple[bytes, bytes]], at: float) -> int:
        endpoint = path.rsplit("/", 1)[-1]
        verifier = self.verifiers.get(endpoint)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in pairs}
        if verifier is None:
            self.rejected += 1
            return 404
        try:
            verifier.verify(raw, headers)
        except WebhookVerificationError:
            self.rejected += 1
            return 400
        change = orjson.loads(raw)["data"]
        self.arrivals.append(
            (
                int(endpoint),
                headers["webhook-id"],
                str(change["id"]),
                int(change["version"]),
                int(change["seq"]),
                at,
            )
        )
        return 204

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                with self.out.open("wb") as out:
                    out.write(b"".join(orjson.dumps(a) + b"\n" for a in self.arrivals))
                await send({"type": "lifespan.shutdown.complete"})
                return


async def respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secrets", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    secrets = orjson.loads(args.secrets.read_bytes())
    uvicorn.run(
        Receiver(secrets, args.out),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
