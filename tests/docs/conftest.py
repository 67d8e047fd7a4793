"""A server of its own for each run of the documentation (runner.py says what it provides)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.runner import FirstStart, first_start


@pytest.fixture
def first_server(fresh_database: object, tmp_path: Path) -> Iterator[FirstStart]:
    """``entrepot serve`` on an empty database, as on a newcomer's first ``make run``."""
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    directory = tmp_path / "server"
    directory.mkdir()
    with first_start(url, directory) as server:
        yield server
