"""The SDK's Server-Sent Events parser."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from entrepot.client.sse import Event, EventParser

STREAM = (
    "retry: 2000\n\n"
    ": heartbeat\n\n"
    'id: 1\nevent: change\ndata: {"text": "a\u2028b\u0085c"}\n\n'
    "id: 2\r\nevent: change\r\ndata: line one\r\ndata: line two\r\n\r\n"
    "event: gone\rdata: {}\r\r\n"
).encode()
EXPECTED = [
    Event("change", '{"text": "a\u2028b\u0085c"}', "1"),
    Event("change", "line one\nline two", "2"),
    Event("gone", "{}", "2"),
]


def test_events_comments_and_every_line_end() -> None:
    parser = EventParser()
    assert parser.feed(STREAM) == EXPECTED
    assert parser.last_id == "2"


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_events_are_the_same_however_the_bytes_are_split(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    parser = EventParser()
    found: list[Event] = []
    for start, end in itertools.pairwise(points):
        found.extend(parser.feed(STREAM[start:end]))
    assert found == EXPECTED
