"""docs/deploy.md's shell blocks run, from the repository's root, as a reader runs them;
those that need a cluster or a container engine say so in a comment above them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.deploy import facts
from tests.docs.pages import FROM_THE_CHECKOUT, blocks
from tests.tools import require

PAGE = "docs/deploy.md"


def test_the_offline_shell_blocks_run() -> None:
    assert PAGE in FROM_THE_CHECKOUT
    shell = [block for block in blocks(PAGE) if block.lang == "shell"]
    runnable = [block.code for block in shell if block.tag != "skip"]
    assert len(runnable) >= 3, "the page keeps commands that run without a cluster"
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
