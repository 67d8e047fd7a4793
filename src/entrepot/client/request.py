"""Request building and body handling shared by both clients (no I/O of the network).

Query strings for list filters, record paths, JSON with exact integers, and
the chunking of import sources (a path, a binary file, or an iterable of
records) into NDJSON without holding the whole of it in memory.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Final, cast
from urllib.parse import quote

CHUNK = 256 * 1024
NDJSON = "application/x-ndjson"
CSV = "text/csv"
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Params = list[tuple[str, str]]
ImportSource = str | Path | IO[bytes] | Iterable[Mapping[str, Any]]


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


AUTO: Final = _Auto()
"""The default Idempotency-Key of a write: a new random one, reused across its retries."""

KeyOption = str | None | _Auto


def new_idempotency_key() -> str:
    return f"sdk-{uuid.uuid4().hex}"


def idempotency_key(method: str, given: KeyOption) -> str | None:
    if isinstance(given, _Auto):
        return new_idempotency_key() if method.upper() in WRITE_METHODS else None
    return given


def segment(value: str) -> str:
    """One path segment, percent-encoded (record ids may hold ``/``, spaces, anything)."""
    return quote(str(value), safe="")


def record_path(dataset: str, record_id: str | None = None) -> str:
    base = f"/v1/datasets/{segment(dataset)}/records"
    return base if record_id is None else f"{base}/{segment(record_id)}"


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(scalar(v) for v in value)
    return str(value)


def query(**values: Any) -> Params:
    """Query parameters from keyword arguments, leaving out those that are None."""
    return [(k, scalar(v)) for k, v in values.items() if v is not None]


def filter_params(conditions: Mapping[str, Any] | None) -> Params:
    """``{"price": {"lt": 50}, "region": "eu"}`` -> ``filter[price][lt]=50&filter[region]=eu``.

    A list value is ``in`` (``{"region": ["eu", "us"]}``); the same mapping
    shape as a grant's ``row_filter``.
    """
    out: Params = []
    for name, condition in (conditions or {}).items():
        if isinstance(condition, Mapping):
            out.extend((f"filter[{name}][{op}]", scalar(v)) for op, v in condition.items())
        elif isinstance(condition, list | tuple | set | frozenset):
            out.append((f"filter[{name}][in]", scalar(list(condition))))
        else:
            out.append((f"filter[{name}]", scalar(condition)))
    return out


def comma(value: str | Iterable[str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return ",".join(value)


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


def compact(**values: Any) -> dict[str, Any]:
    """A JSON body from keyword arguments, leaving out those that are None."""
    return {k: v for k, v in values.items() if v is not None}


# Export formats whose records are lines (the others are Parquet and Arrow files).
TEXT_EXPORTS = frozenset({"ndjson", "csv"})


def import_content_type(source: ImportSource, fmt: str | None) -> str:
    if fmt is None and isinstance(source, str | Path) and Path(source).suffix.lower() == ".csv":
        fmt = "csv"
    if fmt not in (None, "ndjson", "csv"):
        raise ValueError("format is ndjson or csv")
    return CSV if fmt == "csv" else NDJSON


def import_chunks(source: ImportSource) -> Iterator[tuple[bytes, int]]:
    """The body of an import as chunks of about ``CHUNK`` bytes, each with its line count."""
    if isinstance(source, str | Path):
        with Path(source).open("rb") as handle:
            yield from _file_chunks(handle)
    elif isinstance(source, IO) or hasattr(source, "read"):
        yield from _file_chunks(cast(IO[bytes], source))
    else:
        yield from _record_chunks(source)


def _file_chunks(handle: IO[bytes]) -> Iterator[tuple[bytes, int]]:
    while chunk := handle.read(CHUNK):
        if isinstance(chunk, str):
            raise TypeError("open the file in binary mode ('rb')")
        yield chunk, chunk.count(b"\n")


def _record_chunks(records: Iterable[Mapping[str, Any]]) -> Iterator[tuple[bytes, int]]:
    parts: list[bytes] = []
    size = 0
    for record in records:
        line = dumps(dict(record)) + b"\n"
        parts.append(line)
        size += len(line)
        if size >= CHUNK:
            yield b"".join(parts), len(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts), len(parts)


def rereadable(source: ImportSource) -> bool:
    """Whether an import body can be sent again (a path is opened anew for each try)."""
    return isinstance(source, str | Path)
