"""docs/deploy.md's shell blocks run, from the repository's root, as a reader runs them;
those that need a cluster or a container engine say so in a comment above them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.deploy import facts
from tests.deploy.tools import require

PAGE = facts.ROOT / "docs" / "deploy.md"
BLOCK = re.compile(r"(<!-- docs-test: skip \(([^)]*)\) -->\n)?^```sh\n(.*?)^```", re.M | re.S)


def test_the_offline_shell_blocks_run() -> None:
    blocks = BLOCK.findall(PAGE.read_text())
    runnable = [code for skip, _, code in blocks if not skip]
    assert len(runnable) >= 3, "the page keeps commands that run without a cluster"
    assert all(reason for skip, reason, _ in blocks if skip), "a skip says why"
    require("kubectl", "kubectl")
    require("docker-compose", "docker-compose")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for code in runnable:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            env=env,
            cwd=facts.ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{code}\n{done.stderr}"
