"""The CLI's config file: written 0600, read back the same, whatever the names hold."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from entrepot.commands.connection import Config, ConfigError, Profile, resolve


def test_a_config_round_trips_with_any_profile_name(tmp_path: Path) -> None:
    path = tmp_path / "entrepot" / "config.toml"
    config = Config(
        "my work",
        {
            "my work": Profile("my work", "https://api.example.org", 'tok"en\\1'),
            "local": Profile("local", "http://127.0.0.1:8000", None),
        },
    )
    config.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Config.load(path) == config


def test_a_profile_token_goes_only_to_its_own_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    Config("p", {"p": Profile("p", "http://a.example:8000", "secret")}).save()
    assert resolve(None, None, None).token == "secret"
    assert resolve("http://a.example:8000/", None, None).token == "secret"
    assert resolve("http://b.example:8000", None, None).token is None
    assert resolve("http://b.example:8000", "given", None).token == "given"
    with pytest.raises(ConfigError, match="no profile 'q'"):
        resolve(None, None, "q")
    with pytest.raises(ConfigError, match="not a server URL"):
        resolve("b.example", None, None)
