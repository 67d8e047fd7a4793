"""A Server-Sent Events parser (the WHATWG event stream format), sans-IO.

Feed it bytes as they arrive; it returns the complete events. Lines end at
``\\n``, ``\\r\\n`` or ``\\r`` bytes only: JSON in ``data`` may hold U+2028 or
U+0085 raw, which ``str.splitlines`` would wrongly treat as line ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    name: str
    data: str
    id: str | None


class EventParser:
    def __init__(self) -> None:
        self._pending = b""
        self._name = ""
        self._data: list[str] = []
        self._id: str | None = None
        self.last_id: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        text = self._pending + chunk
        hold = text.endswith(b"\r")  # maybe the first half of \r\n: wait for the next byte
        lines = _LINE_END.split(text[:-1] if hold else text)
        self._pending = lines.pop() + (b"\r" if hold else b"")
        events: list[Event] = []
        for raw in lines:
            found = self._line(raw.decode("utf-8"))
            if found is not None:
                events.append(found)
        return events

    def _line(self, line: str) -> Event | None:
        if line == "":
            if not self._data and not self._name:
                return None
            event = Event(self._name or "message", "\n".join(self._data), self._id)
            self._name, self._data = "", []
            return event
        if line.startswith(":"):
            return None  # a comment (heartbeat)
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._name = value
        elif field == "data":
            self._data.append(value)
        elif field == "id" and "\0" not in value:
            self._id = value
            self.last_id = value
        return None
