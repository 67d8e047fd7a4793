"""`entrepot login` checks and saves a profile (mode 0600); --profile uses it; the token
is never printed and never sent to another server."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

from tests.cli.conftest import ADMIN, Cli
from tests.e2e.test_serve import free_port


def test_login_saves_a_checked_profile_readable_by_its_owner_only(cli: Cli) -> None:
    done = cli.process(
        "login",
        "--profile",
        "work",
        "--url",
        cli.server,
        "--with-token",
        input=ADMIN + "\n",
        token=None,
        ENTREPOT_URL=None,
    )
    assert done.returncode == 0, done.stderr
    assert ADMIN not in done.stdout + done.stderr
    path = cli.config / "entrepot" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = tomllib.loads(path.read_text())
    assert saved == {
        "default": "work",
        "profiles": {"work": {"url": cli.server, "token": ADMIN}},
    }

    # No --url, no --token, no environment: the profile is the connection.
    listed = cli.process(
        "orgs", "list", "--profile", "work", "-o", "json", token=None, ENTREPOT_URL=None
    )
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    by_default = cli.run("orgs", "list", "-o", "json", token=None, ENTREPOT_URL=None)
    assert by_default.exit_code == 0

    me = cli.json("whoami", token=None, ENTREPOT_URL=None)
    assert (me["kind"], me["credential"]["kind"]) == ("admin", "api_key")
    assert "admin" in me["scopes"]

    profiles = cli.json("profiles", token=None)
    assert profiles == [{"name": "work", "url": cli.server, "default": True, "logged_in": True}]
    assert ADMIN not in cli.ok("profiles", "-o", "table").stdout

    # A profile's token is not handed to another server.
    elsewhere = f"http://127.0.0.1:{free_port()}"
    away = cli.process("orgs", "list", "--url", elsewhere, token=None, ENTREPOT_URL=None)
    assert away.returncode == 3
    assert ADMIN not in away.stderr

    cli.ok("logout", "--profile", "work")
    assert "token" not in tomllib.loads(path.read_text())["profiles"]["work"]
    after = cli.run("orgs", "list", "--profile", "work", token=None, ENTREPOT_URL=None)
    assert after.exit_code == 1
    assert "401" in after.stderr


def test_login_refuses_a_bad_token_and_saves_nothing(cli: Cli) -> None:
    done = cli.process("login", "--url", cli.server, "--token", "ent_wrong-wrong-wrong", token=None)
    assert done.returncode == 1
    assert "401" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (cli.config / "entrepot" / "config.toml").exists()


def test_an_unknown_profile_is_a_usage_error(cli: Cli) -> None:
    done = cli.run("orgs", "list", "--profile", "nope")
    assert done.exit_code == 2
    assert "entrepot login --profile nope" in done.stderr


def test_a_config_file_written_by_hand_is_read(cli: Cli, tmp_path: Path) -> None:
    path = cli.config / "entrepot" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(f'[profiles.default]\nurl = "{cli.server}"\ntoken = "{ADMIN}"\n')
    assert cli.run("orgs", "list", "-o", "json", token=None, ENTREPOT_URL=None).exit_code == 0
