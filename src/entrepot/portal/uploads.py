"""A file upload (``multipart/form-data``) read as a stream, never held whole.

The fields sent before the file (the CSRF token first: the form puts it there) are
read into a :class:`~entrepot.portal.forms.Form`, so the token is checked before a
byte of the file is used; the file's bytes then flow to whoever reads
:attr:`Upload.chunks`, as they arrive. A bulk import reading them writes while the
browser still sends, and the browser's upload progress is the import's.
Anything after the file is not read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from entrepot.portal.forms import Form, checked
from entrepot.problems import BadRequest, PayloadTooLarge, UnsupportedMediaType

MAX_FIELDS = 50
MAX_FIELD_BYTES = 64 * 1024
FORM_DATA = b"multipart/form-data"

Event = tuple[str, object]


@dataclass
class Upload:
    """The uploaded file: its name and type as the browser gave them, and its bytes."""

    filename: str
    content_type: str
    chunks: AsyncIterator[bytes]


class _Events:
    """The parser's callbacks as a list of events: ("part", headers), ("data", bytes),
    ("end", None) for each part, ("done", None) at the closing boundary."""

    def __init__(self, boundary: bytes) -> None:
        self.pending: list[Event] = []
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
                "on_part_data": self._data,
                "on_part_end": lambda: self.pending.append(("end", None)),
                "on_end": lambda: self.pending.append(("done", None)),
            },
        )

    def _begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_done(self) -> None:
        self.pending.append(("part", dict(self._headers)))

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.pending.append(("data", bytes(data[start:end])))


async def _events(boundary: bytes, stream: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    events = _Events(boundary)
    done = False
    try:
        async for chunk in stream:
            events.parser.write(chunk)
            for event in events.pending:
                done = done or event[0] == "done"
                yield event
            events.pending.clear()
        events.parser.finalize()
    except MultipartParseError:
        raise BadRequest("The upload could not be read: it is not valid form data.") from None
    for event in events.pending:
        done = done or event[0] == "done"
        yield event
    if not done:
        raise BadRequest("The upload ended before its last part.")


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"The upload's {what} is not UTF-8.") from None


async def _file(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    async for kind, payload in events:
        if kind == "data":
            assert isinstance(payload, bytes)
            yield payload
        elif kind in ("end", "done"):
            return


async def read_upload(
    content_type: str | None, stream: AsyncIterator[bytes]
) -> tuple[Form, Upload | None]:
    """The fields before the first file, and that file (None if the form sent none)."""
    media, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if media != FORM_DATA or not boundary:
        raise UnsupportedMediaType("A file is sent as multipart/form-data.")
    events = _events(boundary, stream)
    values: dict[str, list[str]] = {}
    name: str | None = None
    buffer = bytearray()
    count = 0
    async for kind, payload in events:
        if kind == "part":
            assert isinstance(payload, dict)
            _, disposition = parse_options_header(payload.get(b"content-disposition", b""))
            name = _text(disposition.get(b"name", b""), "field name")
            if b"filename" in disposition:
                upload = Upload(
                    _text(disposition[b"filename"], "file name"),
                    _text(payload.get(b"content-type", b""), "file type"),
                    _file(events),
                )
                return checked(values), upload
            buffer = bytearray()
        elif kind == "data":
            assert isinstance(payload, bytes)
            buffer += payload
            if len(buffer) > MAX_FIELD_BYTES:
                raise PayloadTooLarge(f"A form field holds more than {MAX_FIELD_BYTES} bytes.")
        elif kind == "end" and name is not None:
            count += 1
            if count > MAX_FIELDS:
                raise BadRequest(f"The form has more than {MAX_FIELDS} fields.")
            values.setdefault(name, []).append(_text(bytes(buffer), f"field {name!r}"))
            name = None
    return checked(values), None
