"""The blocking client is generated from the async one; a stale copy fails here."""

from __future__ import annotations

from entrepot.client import _unasync


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    assert _unasync.TARGET.read_text() == _unasync.generate(_unasync.SOURCE.read_text()), (
        "run: .venv/bin/python -m entrepot.client._unasync"
    )


def test_the_generated_client_has_no_async_left() -> None:
    text = _unasync.TARGET.read_text()
    for word in ("async ", "await ", "asyncio", "AsyncClient", "__aiter__"):
        assert word not in text
