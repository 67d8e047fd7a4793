"""Long transfers that a slow client cannot stretch forever.

An export or an import holds a database snapshot or transaction for as long
as its transfer lasts, so its client's pace is everyone's problem. The rule,
for both directions: through the time spent waiting on the client (the
server's own work does not count), the client must move at least
``min_rate`` bytes a second, judged over each ``window`` of such waiting. A
client that stops altogether is cut one window after it stopped; one that
crawls, at the end of the window it crawled through. Like nginx's
``send_timeout`` and ``client_body_timeout``, with Apache's ``MinRate``.

Here too, :class:`bulk_job` counts each import and export from its admission
to its end, however it ends (``entrepot_bulk_jobs_*``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Literal, TypeVar

from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from entrepot.ops.metrics import BULK_CUT, BULK_FINISHED, BULK_STARTED
from entrepot.problems import RequestTimeout
from entrepot.settings import Settings

T = TypeVar("T")


class ClientTooSlow(Exception):
    """The client moved data slower than the floor; the stream is cut."""


class RateFloor:
    def __init__(self, window: float, min_rate: float) -> None:
        self.window = window
        self.min_rate = min_rate
        self._waited = 0.0
        self._moved = 0

    async def wait(self, step: Awaitable[T], size: Callable[[T], int] | int) -> T:
        """Await ``step`` (a send or a receive) that moves ``size`` bytes (or as many as
        ``size`` says its result holds); raise ClientTooSlow below the floor.

        One step that waits a whole window is a stall, however fast the client was before.
        """
        task = asyncio.ensure_future(step)
        began = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                timeout = min(self.window - self._waited, began + self.window - now)
                done, _ = await asyncio.wait({task}, timeout=max(timeout, 0.0))
                self._waited += time.monotonic() - now
                if done:
                    result = task.result()
                    self._moved += size if isinstance(size, int) else size(result)
                    self._judge()
                    return result
                if time.monotonic() - began >= self.window:
                    raise ClientTooSlow(
                        f"no progress in {self.window:.0f} s of waiting on the client"
                    )
                self._judge()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # settled before the caller moves on
            if not task.cancelled():
                task.exception()  # raised above, or superseded by what ends this wait

    def _judge(self) -> None:
        if self._waited < self.window:
            return
        if self._moved < self.min_rate * self._waited:
            raise ClientTooSlow(
                f"{self._moved} bytes in {self._waited:.1f} s of waiting on the client "
                f"(the floor is {self.min_rate:.0f} bytes/s)"
            )
        self._waited, self._moved = 0.0, 0


def bulk_floor(settings: Settings) -> RateFloor:
    """The pace every import body and export reader must keep."""
    return RateFloor(settings.bulk_stall_seconds, settings.bulk_min_bytes_per_second)


async def prepend(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """``first`` then ``rest``, closing ``rest`` (and what it holds) however we stop.

    Streams open their snapshot and read a first chunk before the answer
    starts, so that a failure is still a problem document; this puts it back.
    """
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()


def _body_size(message: Message) -> int:
    return len(message.get("body", b""))


async def body_chunks(receive: Receive, floor: RateFloor) -> AsyncIterator[bytes]:
    """The request body, chunk by chunk, read under ``floor``.

    Too slow: 408, with the connection closed (the rest of the body is not read).
    """
    while True:
        try:
            message = await floor.wait(receive(), _body_size)
        except ClientTooSlow as exc:
            BULK_CUT.labels("upload").inc()
            raise RequestTimeout(
                f"The request body arrived too slowly: {exc}.", headers={"Connection": "close"}
            ) from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        body: bytes = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


class GuardedStreamingResponse(StreamingResponse):
    """A streamed answer sent under a :class:`RateFloor`, whose body iterator is always
    closed when the answer ends, however it ends (done, client gone, or cut), so the
    snapshot and connection behind it are released at once."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        floor: RateFloor,
        *,
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self.floor = floor
        self.source = content

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for chunk in self.body_iterator:
            data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            message = {"type": "http.response.body", "body": data, "more_body": True}
            try:
                await self.floor.wait(send(message), len(data))
            except ClientTooSlow:
                BULK_CUT.labels("download").inc()
                raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            closing = getattr(self.source, "aclose", None)
            if closing is not None:
                await closing()


BulkKind = Literal["import", "export", "audit_export"]


class bulk_job:  # a function to its callers, usable in `with` and `async with` alike
    """Count a bulk job from its admission to its end, whichever way it ends.

    An export is a generator: a client that leaves closes it (GeneratorExit at
    its ``yield``); an importing client that leaves mid-body ends its body
    (ClientDisconnect); a server that stops cancels both: all ``abandoned``.
    Asynchronous too, so it joins the ``async with`` that admits the job.
    """

    __slots__ = ("_kind",)

    def __init__(self, kind: BulkKind) -> None:
        self._kind = kind

    def __enter__(self) -> None:
        BULK_STARTED.labels(self._kind).inc()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            outcome = "completed"
        elif issubclass(exc_type, GeneratorExit | asyncio.CancelledError | ClientDisconnect):
            outcome = "abandoned"
        else:
            outcome = "failed"
        BULK_FINISHED.labels(self._kind, outcome).inc()

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.__exit__(exc_type, *rest)
