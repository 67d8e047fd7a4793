"""docs/sdk.md runs: every python block, in order, against a fresh server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.sdk.conftest import ADMIN

PAGE = Path(__file__).parents[2] / "docs" / "sdk.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_the_page_has_an_example_for_every_namespace() -> None:
    text = PAGE.read_text()
    for used in (
        "api.orgs.",
        "api.datasets.",
        "api.records.",
        "api.import_records(",
        "api.export(",
        "api.changes.follow(",
        "api.apps.",
        "api.keys.",
        "api.access_requests.",
        "api.grants.",
        "api.webhooks.",
        "verify_webhook(",
        "api.audit.",
        "api.apps.usage(",
        "ClientCredentials(",
        "AsyncClient(",
    ):
        assert used in text, used


def test_every_python_block_runs_in_order(server: str, tmp_path: Path) -> None:
    blocks = BLOCK.findall(PAGE.read_text())
    assert len(blocks) >= 10
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    env.update({"E": server, "TOKEN": ADMIN})
    for number, code in enumerate(blocks, 1):
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"block {number} of {PAGE.name}:\n{code}\n{done.stderr}"
        assert "Traceback" not in done.stderr
