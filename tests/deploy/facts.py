"""What the deployment files are checked against: the application's own routes and
settings, and the paths of the files themselves."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from entrepot.app import create_app
from entrepot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"

SETTINGS = frozenset(f"ENTREPOT_{name.upper()}" for name in Settings.model_fields)


def graceful_shutdown_seconds() -> int:
    """How long `entrepot serve` lets in-flight requests finish after SIGTERM: the
    ``timeout_graceful_shutdown`` it hands uvicorn, read from cli.py's source."""
    tree = ast.parse((ROOT / "src" / "entrepot" / "cli.py").read_text())
    found = [
        node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword)
        and node.arg == "timeout_graceful_shutdown"
        and isinstance(node.value, ast.Constant)
    ]
    assert len(found) == 1, "one constant timeout_graceful_shutdown in cli.py"
    assert isinstance(found[0], int)
    return found[0]


@cache
def get_routes() -> frozenset[str]:
    """Every path the API serves GET on, from its OpenAPI document (no store reached)."""
    app = create_app(Settings(database_url="postgresql://unused.invalid/none"))
    paths = app.openapi()["paths"]
    return frozenset(path for path, operations in paths.items() if "get" in operations)


def documented_settings() -> set[str]:
    """The ENTREPOT_* names docs/operations.md's settings table lists."""
    text = (ROOT / "docs" / "operations.md").read_text()
    table = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(ENTREPOT_[A-Z0-9_]+)`", table))
