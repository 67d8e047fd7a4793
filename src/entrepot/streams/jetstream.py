"""The publisher's side of NATS: one connection, the streams it creates, pipelined
publishes that JetStream fences.

``publish`` sends a page of messages without waiting for each PubAck (one
connection keeps them in order), each expecting the subject's last JetStream
sequence to be the one before it (``Nats-Expected-Last-Subject-Sequence``). So
the subject can only ever grow by the next message this publisher meant to
put there: a message lost, reordered or raced by another publisher makes every
later one in the page fail instead of landing out of order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import nats
import nats.errors
import nats.js.errors
import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck, StorageType, StreamConfig

from entrepot.streams import messages

log = structlog.get_logger("entrepot.streams")

CONNECT_SECONDS = 2.0
FIRST_CONNECT_SECONDS = 5.0
ACK_SECONDS = 5.0  # for a page's PubAcks, all together
API_SECONDS = 5.0
WRONG_LAST_SEQUENCE = 10071
# The longest one page may wait on NATS: a first connect, the stream's check (and its
# creation), its last message, the PubAcks.
WORST_PAGE_SECONDS = FIRST_CONNECT_SECONDS + 3 * API_SECONDS + ACK_SECONDS
PUBLISH_FAILURES: tuple[type[BaseException], ...] = (
    nats.errors.Error,  # nats.js.errors.Error derives from it: API errors, no stream
    TimeoutError,
    OSError,
)


class StreamConflict(Exception):
    """A JetStream stream of that name exists for other subjects: not ours to change."""


@dataclass(frozen=True, slots=True)
class LastMessage:
    """The subject's last message: its JetStream sequence and the feed position it holds."""

    stream_seq: int
    incarnation: str | None
    seq: int


@dataclass(frozen=True, slots=True)
class Published:
    """The PubAcks of a page's first messages, in order, and why the rest were not
    stored (``None``: all were)."""

    acks: list[PubAck]
    failure: BaseException | None

    @property
    def rejected(self) -> bool:
        """Refused for a wrong last sequence: someone else published on the subject."""
        failure = self.failure
        return isinstance(failure, nats.js.errors.APIError) and (
            failure.err_code == WRONG_LAST_SEQUENCE
        )


class JetStreamLink:
    def __init__(self, url: str, duplicate_window: float) -> None:
        self.url = url
        self.duplicate_window = duplicate_window
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._ensured: set[str] = set()
        self._reply_box: Replies | None = None

    async def js(self) -> JetStreamContext:
        """The JetStream context, connecting first if need be (raises if NATS is away;
        once connected, the client reconnects by itself)."""
        if self._js is None or self._nc is None or self._nc.is_closed:
            # Once connected the client reconnects forever by itself; its first connect
            # would too (max_reconnect_attempts=-1), so it is bounded here: the loop
            # must come round to beat its heartbeat and renew its lease.
            async with asyncio.timeout(FIRST_CONNECT_SECONDS):
                self._nc = await nats.connect(
                    self.url,
                    connect_timeout=CONNECT_SECONDS,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1.0,
                    allow_reconnect=True,
                    error_cb=_quiet_error,
                    disconnected_cb=_disconnected,
                    reconnected_cb=self._reconnected,
                    name="entrepot-jetstream-publisher",
                )
            self._js = self._nc.jetstream(timeout=API_SECONDS)
            self._ensured.clear()
        return self._js

    async def _reconnected(self) -> None:
        log.info("nats_reconnected")
        self._ensured.clear()  # a server started afresh may have lost its streams

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.drain()
            except PUBLISH_FAILURES:
                await nc.close()

    def forget(self, stream: str) -> None:
        """Check the stream again before the next publish (after a failure)."""
        self._ensured.discard(stream)

    async def ensure_stream(self, stream: str, subject: str) -> None:
        """Create the JetStream stream for ``subject`` if it does not exist."""
        if stream in self._ensured:
            return
        js = await self.js()
        try:
            info = await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=stream,
                    subjects=[subject],
                    duplicate_window=self.duplicate_window,
                    storage=StorageType.FILE,
                    description="Entrepot change feed (docs/jetstream.md)",
                )
            )
        else:
            if subject not in (info.config.subjects or []):
                raise StreamConflict(
                    f"JetStream stream {stream!r} exists for {info.config.subjects}, not "
                    f"{subject!r}"
                )
        self._ensured.add(stream)

    async def last_message(self, stream: str, subject: str) -> LastMessage | None:
        """What JetStream holds last on ``subject``: where to resume; None if nothing."""
        js = await self.js()
        try:
            found = await js.get_last_msg(stream, subject)
        except nats.js.errors.NotFoundError:
            return None
        where = messages.position(found.headers)
        if where is None:
            raise StreamConflict(f"the last message on {subject!r} was not published by Entrepot")
        assert found.seq is not None
        return LastMessage(found.seq, where[0], where[1])

    async def publish(
        self,
        subject: str,
        items: list[tuple[dict[str, str], bytes]],
        expected_last: int,
    ) -> Published:
        """Publish ``items`` (headers, body) in order after the subject's message
        ``expected_last`` (0: none yet).

        Sent one after the other on the one connection, each with its own reply
        subject, then the PubAcks awaited together (nats-py's ``publish_async`` loses
        an error answer: it raises it inside its callback instead of failing the
        future, so a refused publish would look like a timeout).
        """
        await self.js()
        replies = await self._replies()
        futures: list[asyncio.Future[PubAck]] = []
        try:
            for n, (headers, body) in enumerate(items):
                fenced = {
                    **headers,
                    messages.EXPECTED_LAST_SUBJECT_SEQUENCE: str(expected_last + n),
                }
                inbox, future = replies.expect()
                futures.append(future)
                assert self._nc is not None
                await self._nc.publish(subject, body, reply=inbox, headers=fenced)
        except PUBLISH_FAILURES as exc:
            return await _collect(futures, exc)
        return await _collect(futures, None)

    async def _replies(self) -> Replies:
        nc = self._nc
        assert nc is not None
        if self._reply_box is None or self._reply_box.nc is not nc:
            self._reply_box = await Replies.subscribed(nc)
        return self._reply_box


class Replies:
    """One wildcard subscription answering many publishes: a future per reply subject."""

    def __init__(self, nc: Client, prefix: str) -> None:
        self.nc = nc
        self.prefix = prefix
        self._waiting: dict[str, asyncio.Future[PubAck]] = {}
        self._next = 0

    @classmethod
    async def subscribed(cls, nc: Client) -> Replies:
        replies = cls(nc, nc.new_inbox())
        await nc.subscribe(f"{replies.prefix}.*", cb=replies._answer)
        return replies

    def expect(self) -> tuple[str, asyncio.Future[PubAck]]:
        self._next += 1
        inbox = f"{self.prefix}.{self._next}"
        future: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda _: self._waiting.pop(inbox, None))
        self._waiting[inbox] = future
        return inbox, future

    async def _answer(self, msg: Msg) -> None:
        future = self._waiting.get(msg.subject)
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            answer = orjson.loads(msg.data)
        except orjson.JSONDecodeError as exc:
            future.set_exception(exc)
            return
        if "error" in answer:
            try:
                nats.js.errors.APIError.from_error(answer["error"])  # raises the right kind
            except nats.js.errors.APIError as exc:
                future.set_exception(exc)
            return
        # Built directly: PubAck.from_response walks the dataclass's fields each time.
        future.set_result(
            PubAck(stream=answer["stream"], seq=answer["seq"], duplicate=answer.get("duplicate"))
        )


async def _collect(
    futures: list[asyncio.Future[PubAck]], sending: BaseException | None
) -> Published:
    """The acks in order up to the first failure (a timeout counts as one)."""
    acks: list[PubAck] = []
    failure = sending
    try:
        async with asyncio.timeout(ACK_SECONDS):
            for future in futures:
                try:
                    acks.append(await future)
                except PUBLISH_FAILURES as exc:
                    failure = exc
                    break
    except TimeoutError as exc:
        failure = exc
    for future in futures[len(acks) :]:
        future.cancel()
    return Published(acks, failure)


async def _quiet_error(exc: Exception) -> None:
    """nats-py's report of each failed (re)connect attempt: debug, since one
    ``nats_disconnected`` warning already said NATS is away (and the URL, which may
    hold a password, is never logged)."""
    log.debug("nats_error", error=type(exc).__name__)


async def _disconnected() -> None:
    log.warning("nats_disconnected")
