"""The CLI against `entrepot serve` over TCP (the SDK suite's server fixture), as a user
runs it: the real Typer app through Click's runner, or ``python -m entrepot`` as a
process where what matters is what a terminal would show (no traceback, exit status).

Every invocation gets its own ``XDG_CONFIG_HOME`` so no test reads or writes the
profiles of the person running the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from entrepot.cli import app
from entrepot.client import Client
from tests.docs.conftest import first_server
from tests.sdk.conftest import ADMIN, SCHEMA, admin, receiver, server, unique

__all__ = ["ADMIN", "SCHEMA", "Cli", "admin", "first_server", "receiver", "server", "unique"]


@dataclass
class Cli:
    """``entrepot`` with a server, a token and a config directory of its own."""

    server: str
    config: Path
    token: str | None = ADMIN

    def env(self, **extra: str | None) -> dict[str, str | None]:
        """The environment of a run; ``token=`` stands for ``ENTREPOT_TOKEN``."""
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ENTREPOT_")}
        env.update(
            {
                "ENTREPOT_URL": self.server,
                "ENTREPOT_TOKEN": extra.pop("token", self.token),
                "XDG_CONFIG_HOME": str(self.config),
            }
        )
        env.update(extra)
        return env

    def run(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        """In-process (the real app, the real server over HTTP)."""
        result = CliRunner().invoke(app, list(args), input=input, env=self.env(**env))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def ok(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        result = self.run(*args, input=input, **env)
        assert result.exit_code == 0, f"{args}: {result.exit_code}\n{result.stderr}"
        return result

    def json(self, *args: str, input: str | None = None, **env: str | None) -> Any:
        return json.loads(self.ok(*args, "--output", "json", input=input, **env).stdout)

    def process(
        self, *args: str, input: str | None = None, **env: str | None
    ) -> subprocess.CompletedProcess[str]:
        """As a separate process, the way a shell runs it."""
        full = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
        full.update({k: v for k, v in self.env(**env).items() if v is not None})
        return subprocess.run(
            [sys.executable, "-m", "entrepot", *args],
            env=full,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def cli(server: str, tmp_path: Path) -> Cli:
    return Cli(server, tmp_path / "config")


@pytest.fixture
def org(admin: Client) -> str:
    return admin.orgs.create(unique("org"), "Org").name


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    return path


@pytest.fixture
def products(admin: Client, org: str) -> Iterator[str]:
    """A public dataset keyed by sku, with three records."""
    name = admin.datasets.create(
        unique("ds"),
        org=org,
        title="Products",
        schema=SCHEMA,
        primary_key="sku",
        visibility="public",
    ).name
    for sku, price, region in (("a", 5, "eu"), ("b", 15, "eu"), ("c", 25, "us")):
        admin.records.put(
            name, sku, {"sku": sku, "name": sku.upper(), "price": price, "region": region}
        )
    return name
