"""docs/cli.md runs: its shell blocks, in order, in one shell, against a fresh server;
and every client command has an example there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import ADMIN
from tests.cli.test_help import SERVER_SIDE, commands

PAGE = Path(__file__).parents[2] / "docs" / "cli.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_every_client_command_has_an_example() -> None:
    text = PAGE.read_text()
    for path, _ in commands():
        if path not in SERVER_SIDE:
            assert re.search(
                rf"^\s*(\S+=\$\()?entrepot {re.escape(path)}\b", text, re.MULTILINE
            ) or (f"entrepot {path} " in text), f"docs/cli.md has no example of entrepot {path}"


def test_the_shell_blocks_run_in_order(server: str, tmp_path: Path) -> None:
    blocks = BLOCK.findall(PAGE.read_text())
    assert len(blocks) >= 10
    script = "\n".join(f'echo "--- block {n}" >&2\n{code}' for n, code in enumerate(blocks, 1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    env.update(
        {
            "E": server,
            "TOKEN": ADMIN,
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    last = done.stderr[done.stderr.rfind("--- block") :]
    assert done.returncode == 0, f"docs/cli.md stopped in {last}"
    assert "Traceback" not in done.stderr
    assert ADMIN not in done.stdout + done.stderr
