"""NATS for the JetStream suites: the machine's server, or one of a test's own, and a
consumer that reads a whole stream."""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import orjson
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from tests.e2e.test_serve import die_with_parent
from tests.waiting import wait_until


@dataclass
class NatsServer:
    """A nats-server of the test's own (``-js`` with its own store directory), so it can
    be killed and started again without touching the machine's shared one."""

    binary: str
    port: int
    store: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-js",
                    "-sd",
                    str(self.store),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        wait_until(self._ready, f"nats-server answers on {self.port}", within=30)

    def _ready(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, self.log.read_text()[-2000:]
        return (
            "Server is ready"
            in self.log.read_text(errors="replace").split("Starting nats-server")[-1]
        )

    def kill(self) -> None:
        """SIGKILL and reap: what a crash does (JetStream recovers its store on start)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


async def stream_messages(
    url: str, stream: str, subject: str
) -> list[tuple[int, dict[str, str], dict[str, Any]]]:
    """Every message of ``stream`` as a JetStream consumer sees it, from the first: (stream
    sequence, headers, body), in delivery order; none before the stream exists."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            return []  # not created yet
        total = info.state.messages
        sub = await js.pull_subscribe(
            subject,
            stream=stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT),
        )
        seen: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        while len(seen) < total:
            try:
                batch = await sub.fetch(min(500, total - len(seen)), timeout=5)
            except nats.errors.TimeoutError:
                break
            for msg in batch:
                seen.append(
                    (msg.metadata.sequence.stream, dict(msg.headers or {}), orjson.loads(msg.data))
                )
                await msg.ack()
        await sub.unsubscribe()
        return seen
    finally:
        await nc.close()


async def delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(stream)
    finally:
        await nc.close()
