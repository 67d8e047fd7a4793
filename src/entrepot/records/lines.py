"""Physical lines out of a streamed request body, numbered from 1.

The body is never held whole: chunks are split on ``\\n`` as they arrive and
only the unfinished line is buffered. A line longer than ``limit`` bytes is
dropped as it streams (its bytes are never kept) and reported as ``None`` so
the caller can name its line number in an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import NamedTuple

BOM = b"\xef\xbb\xbf"


class Line(NamedTuple):
    """A tuple, not a frozen dataclass: one is made per line of an import, and a frozen
    dataclass's ``__init__`` was 8% of an import's time (bench/RESULTS.md)."""

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
    async for lines in line_batches(chunks, limit):
        for line in lines:
            yield line


async def line_batches(chunks: AsyncIterable[bytes], limit: int) -> AsyncIterator[list[Line]]:
    """The lines of ``chunks`` (as :func:`split_lines`), a list for each chunk that ends
    at least one: an import handles its lines a chunk at a time, not one
    ``async for`` step (three generators deep) per line."""
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
        lines: list[Line] = []
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
                lines.append(Line(number, None))
            elif pending:
                pending += chunk[start : end + 1]
                lines.append(Line(number, bytes(pending)))
            else:
                lines.append(Line(number, chunk[start : end + 1]))
            pending.clear()
            oversized = False
            start = end + 1
        if lines:
            yield lines
    if pending or oversized:
        yield [Line(number + 1, None if oversized else bytes(pending))]
