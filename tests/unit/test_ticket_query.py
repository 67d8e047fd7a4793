"""A stream ticket leaves the query string before anything sees the request; the
rest of the query stays as it was, byte for byte."""

from __future__ import annotations

from typing import Any

import pytest

from entrepot.auth.tickets import STATE_KEY, take_from_query


def taken(query: bytes) -> tuple[bytes, Any]:
    scope: dict[str, Any] = {"type": "http", "query_string": query}
    take_from_query(scope)
    return scope["query_string"], scope.get("state", {}).get(STATE_KEY)


@pytest.mark.parametrize(
    ("query", "left", "ticket"),
    [
        (b"ticket=eyJ.a.b", b"", "eyJ.a.b"),
        (b"after=3&ticket=eyJ.a.b&incarnation=7", b"after=3&incarnation=7", "eyJ.a.b"),
        (b"%74icket=eyJ%2Ea.b", b"", "eyJ.a.b"),  # percent-encoded name and value
        (b"ticketing=1&tickets=2", b"ticketing=1&tickets=2", None),  # other names stay
        (b"after=0", b"after=0", None),
        (b"", b"", None),
    ],
)
def test_the_ticket_is_taken_and_the_rest_left(query: bytes, left: bytes, ticket: Any) -> None:
    assert taken(query) == (left, ticket)
