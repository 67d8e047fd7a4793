"""What a user sees when something goes wrong: a problem in a few lines, a hint, an exit
status, never a traceback and never the token. Run as real processes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from entrepot.client import Client
from tests.cli.conftest import Cli, unique
from tests.e2e.test_serve import free_port


def clean(done: subprocess.CompletedProcess[str], *secrets: str) -> None:
    assert "Traceback" not in done.stderr
    for secret in secrets:
        assert secret not in done.stdout + done.stderr


def test_an_unknown_token_gets_the_401_hint(cli: Cli, products: str) -> None:
    bad = "ent_not-a-real-key-" + unique("x")
    done = cli.process("datasets", "get", products, token=bad)
    assert done.returncode == 1
    assert done.stderr.startswith("entrepot: 401 ")
    assert "--token" in done.stderr
    assert "ENTREPOT_TOKEN" in done.stderr
    clean(done, bad)


def test_a_missing_scope_is_named(cli: Cli, admin: Client, org: str, products: str) -> None:
    app = admin.apps.create(org, unique("narrow"), scopes=["datasets:read"])
    key = admin.keys.create(app.id, "k", scopes=["datasets:read"]).key
    done = cli.process("records", "list", products, token=key)
    assert done.returncode == 1
    assert "403" in done.stderr
    assert "needs the records:read scope" in done.stderr
    clean(done, key)


def test_a_problem_prints_title_and_detail(cli: Cli) -> None:
    done = cli.process("datasets", "get", "no-such-dataset")
    assert done.returncode == 1
    assert done.stderr.splitlines()[0].startswith("entrepot: 404 Not found: ")
    assert done.stdout == ""
    clean(done, cli.token or "")


def test_a_closed_port_names_the_url_tried() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = Cli(url, config=Path("/nonexistent")).process("orgs", "list", token="ent_whatever")
    assert done.returncode == 3
    assert f"no answer from {url}/v1/orgs (connection refused)" in done.stderr
    assert "--url or ENTREPOT_URL" in done.stderr
    clean(done, "ent_whatever")


def test_usage_mistakes_exit_2(cli: Cli, products: str) -> None:
    not_json = cli.process("records", "put", products, "x", "--data", "{nope")
    assert not_json.returncode == 2
    assert "--data is not JSON" in not_json.stderr
    clean(not_json)
    bad_choice = cli.process("datasets", "list", "--output", "yaml")
    assert bad_choice.returncode == 2
    assert "table" in bad_choice.stderr
    clean(bad_choice)
    bad_filter = cli.process("records", "list", products, "--filter", "price<3")
    assert bad_filter.returncode == 2
    clean(bad_filter)


def test_sync_failures_are_explained(cli: Cli, products: str, tmp_path: Path) -> None:
    to = f"sqlite:///{tmp_path / 'mirror.db'}"
    missing = cli.process("sync", products, "no-such-dataset", "--to", to, "--once")
    assert missing.returncode == 1
    assert "no-such-dataset" in missing.stderr
    clean(missing)
    refused = cli.process("sync", products, "--to", to, "--once", token="ent_nope-nope-nope")
    assert refused.returncode == 1
    assert "401" in refused.stderr
    assert "ENTREPOT_TOKEN" in refused.stderr
    clean(refused, "ent_nope-nope-nope")
    bad_target = cli.process("sync", products, "--to", "mongodb://db/x", "--once")
    assert bad_target.returncode == 2
    assert "--to must be sqlite:///PATH, postgresql://... or mysql://" in bad_target.stderr
    clean(bad_target)
