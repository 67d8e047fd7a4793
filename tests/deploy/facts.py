"""What the deployment files are checked against: the application's own routes and
settings, and the paths of the files themselves."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from entrepot.app import create_app
from entrepot.settings import Settings
from entrepot.store.budget import Budget
from entrepot.webhooks.worker import DRAIN_SECONDS as WEBHOOK_DRAIN

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"

SETTINGS = frozenset(f"ENTREPOT_{name.upper()}" for name in Settings.model_fields)


def graceful_shutdown_seconds(config: Mapping[str, str] | None = None) -> float:
    """The longest `entrepot serve` takes from SIGTERM to exit under ``config`` (the
    deployment's ENTREPOT_* values, the settings' defaults for the rest): its drain,
    the requests in flight, then the webhook attempts in flight (ops/lifecycle.py)."""
    given = config or {}

    def seconds(name: str) -> float:
        default = Settings.model_fields[name].default
        return float(given.get(f"ENTREPOT_{name.upper()}", default))

    return seconds("drain_seconds") + seconds("shutdown_timeout_seconds") + WEBHOOK_DRAIN


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


def budget(config: Mapping[str, str]) -> Budget:
    """One replica's connection budget under ``config`` (the deployment's ENTREPOT_*
    values, the settings' defaults for the rest)."""

    def value(name: str) -> str:
        return str(config.get(f"ENTREPOT_{name.upper()}", Settings.model_fields[name].default))

    pooler = value("pooler")
    assert pooler in ("none", "transaction")
    return Budget(
        workers=int(value("workers")),
        request_pool=int(value("pool_max_size")),
        bulk_pool=int(value("bulk_pool_size")),
        pooler="transaction" if pooler == "transaction" else "none",
    )


def documented_max_connections() -> int:
    """The max_connections docs/deploy.md gives its PostgreSQL."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    (found,) = set(re.findall(r'max_connections: "(\d+)"', text))
    return int(found)
