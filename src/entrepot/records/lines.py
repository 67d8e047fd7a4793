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
        return without_terminator(self.raw or b"")


class LineBatch(NamedTuple):
    """Consecutive lines: line ``first``, ``first + 1``... as their ``raw`` bytes (None for
    one too long), without an object per line."""

    first: int
    raws: list[bytes | None]

    def lines(self) -> list[Line]:
        return [Line(self.first + offset, raw) for offset, raw in enumerate(self.raws)]


def without_terminator(raw: bytes) -> bytes:
    """``raw`` without its ``\\n`` or ``\\r\\n`` (``Line.text``)."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw


async def split_lines(chunks: AsyncIterable[bytes], limit: int) -> AsyncIterator[Line]:
    """Yield every physical line of ``chunks``; a leading UTF-8 BOM is dropped."""
    async for batch in line_batches(chunks, limit):
        for line in batch.lines():
            yield line


async def line_batches(chunks: AsyncIterable[bytes], limit: int) -> AsyncIterator[LineBatch]:
    """The lines of ``chunks`` (as :func:`split_lines`), a batch for each chunk that ends
    at least one: an import handles its lines a chunk at a time, not one
    ``async for`` step (three generators deep) and one object per line."""
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
        raws: list[bytes | None] = []
        first_number = number + 1
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
                raws.append(None)
            elif pending:
                pending += chunk[start : end + 1]
                raws.append(bytes(pending))
            else:
                raws.append(chunk[start : end + 1])
            pending.clear()
            oversized = False
            start = end + 1
        if raws:
            yield LineBatch(first_number, raws)
    if pending or oversized:
        yield LineBatch(number + 1, [None if oversized else bytes(pending)])
