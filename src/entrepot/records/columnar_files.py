"""Parquet files and Arrow IPC streams written as they are produced, never held whole.

A Parquet file ends with a footer that locates every row group, so writers
usually want a seekable file; they only need to know how many bytes they have
written (``tell``). :class:`_Drain` is such a file: it keeps what was written
since it was last drained, and the export sends those bytes after each row
group, so the server holds one row group at a time. The footer follows the
last one. An Arrow IPC stream needs no footer: a schema message, then record
batches (copied, not encoded: written in the event loop), then an
end-of-stream marker.

Parquet encoding (dictionary and Snappy passes) runs in a thread: pyarrow
releases the GIL there, so the event loop keeps serving other requests. One
thread for every export of the process, not the loop's default pool: exports
running at once encode a row group at a time between them, so their encoding
memory adds up to one row group's, and other work's threads stay free.
"""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

ColumnarFormat = Literal["parquet", "arrow"]
_ENCODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="columnar")


class _Drain(io.RawIOBase):
    """A write-only file that hands back what was written since it was last drained."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data: ReadableBuffer, /) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def writable(self) -> bool:
        return True

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class ColumnarWriter:
    """Tables in, the file's bytes out: each call returns what it added to the file."""

    def __init__(self, fmt: ColumnarFormat, schema: pa.Schema) -> None:
        self._sink = _Drain()
        file = pa.PythonFile(self._sink, mode="w")
        self._parquet: pq.ParquetWriter | None = None
        self._ipc: pa.ipc.RecordBatchStreamWriter | None = None
        if fmt == "parquet":
            self._parquet = pq.ParquetWriter(file, schema, compression="snappy")
        else:
            self._ipc = pa.ipc.new_stream(file, schema)

    def started(self) -> bytes:
        """The bytes written on opening (Parquet's magic, or the IPC schema message)."""
        return self._sink.drain()

    async def write(self, table: pa.Table) -> bytes:
        """``table`` as one Parquet row group (or IPC record batches, one a chunk)."""
        return await asyncio.get_running_loop().run_in_executor(_ENCODER, self._write, table)

    def write_batch(self, batch: pa.RecordBatch) -> bytes:
        """One IPC record batch: a copy of its buffers, no encoding, so in the loop."""
        if self._ipc is None:
            raise TypeError("a Parquet file is written a row group at a time")
        self._ipc.write_batch(batch)
        return self._sink.drain()

    async def finish(self) -> bytes:
        """The footer, or the end-of-stream marker."""
        return await asyncio.get_running_loop().run_in_executor(_ENCODER, self._finish)

    def _write(self, table: pa.Table) -> bytes:
        if self._parquet is not None:
            self._parquet.write_table(table, row_group_size=max(table.num_rows, 1))
        elif self._ipc is not None:
            self._ipc.write_table(table)
        return self._sink.drain()

    def _finish(self) -> bytes:
        if self._parquet is not None:
            self._parquet.close()
        elif self._ipc is not None:
            self._ipc.close()
        return self._sink.drain()
