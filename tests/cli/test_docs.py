"""docs/cli.md runs: its shell blocks, in order, in one shell, against a fresh server of
its own (tests/docs/runner.py); and every client command has an example there."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.test_help import SERVER_SIDE, commands
from tests.docs.pages import ROOT, blocks
from tests.docs.runner import FirstStart, run_shell

PAGE = "docs/cli.md"


def test_every_client_command_has_an_example() -> None:
    text = (ROOT / PAGE).read_text()
    for path, _ in commands():
        if path not in SERVER_SIDE:
            assert re.search(
                rf"^\s*(\S+=\$\()?entrepot {re.escape(path)}\b", text, re.MULTILINE
            ) or (f"entrepot {path} " in text), f"docs/cli.md has no example of entrepot {path}"


def test_the_shell_blocks_run_in_order(first_server: FirstStart, tmp_path: Path) -> None:
    ran = run_shell([b for b in blocks(PAGE) if b.lang == "shell"], first_server, tmp_path)
    assert len(ran) >= 10
