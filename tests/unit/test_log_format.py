"""Logs for people on a terminal, JSON lines for everything else."""

from __future__ import annotations

import io

import pytest

from entrepot.logging import resolved_format
from entrepot.settings import Settings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_console_on_a_terminal_and_json_otherwise() -> None:
    assert resolved_format("auto", Terminal()) == "console"
    assert resolved_format("auto", io.StringIO()) == "json"


@pytest.mark.parametrize("asked", ["json", "console"])
def test_an_explicit_format_is_kept_wherever_the_logs_go(asked: str) -> None:
    assert resolved_format(asked, Terminal()) == asked
    assert resolved_format(asked, io.StringIO()) == asked


def test_the_default_is_auto() -> None:
    assert Settings(database_url="postgresql://localhost/x").log_format == "auto"
