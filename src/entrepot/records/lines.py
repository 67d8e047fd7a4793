"""Physical lines out of a streamed request body, numbered from 1.

The body is never held whole: chunks are split on ``\\n`` as they arrive and
only the unfinished line is buffered. A line longer than ``limit`` bytes is
dropped as it streams (its bytes are never kept) and reported as ``None`` so
the caller can name its line number in an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    raw: bytes | None
    """The line's bytes with its terminator (``\\n`` or ``\\r\\n``, if any); None if too long."""

    @property
    def text(self) -> bytes:
        """The line without its terminator (empty for an oversized line)."""
        raw = self.raw or b""
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return raw


async def split_lines(chunks: AsyncIterable[bytes], limit: int) -> AsyncIterator[Line]:
    """Yield every physical line of ``chunks``; a leading UTF-8 BOM is dropped."""
    pending = bytearray()
    oversized = False
    number = 0
    first = True
    async for chunk in chunks:
        if first and chunk:
            first = False
            pending += chunk
            if len(pending) < len(BOM) and BOM.startswith(bytes(pending)):
                first = True  # the BOM itself may straddle chunks
                continue
            chunk = bytes(pending[3:]) if pending.startswith(BOM) else bytes(pending)
            pending.clear()
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                if not oversized:
                    pending += chunk[start:]
                    if len(pending) > limit:
                        oversized = True
                        pending.clear()
                break
            number += 1
            if oversized or len(pending) + end + 1 - start > limit:
                yield Line(number, None)
            elif pending:
                pending += chunk[start : end + 1]
                yield Line(number, bytes(pending))
            else:
                yield Line(number, chunk[start : end + 1])
            pending.clear()
            oversized = False
            start = end + 1
    if pending or oversized:
        yield Line(number + 1, None if oversized else bytes(pending))
