"""Which server a client command talks to, and with which credential.

One resolution for every command: ``--url``/``ENTREPOT_URL``, ``--token``/
``ENTREPOT_TOKEN`` and ``--profile``/``ENTREPOT_PROFILE``, the profile read from
``$XDG_CONFIG_HOME/entrepot/config.toml`` (else ``~/.config/entrepot/config.toml``):

    default = "local"

    [profiles.local]
    url = "http://127.0.0.1:8000"
    token = "ent_..."

A profile's token is sent only to that profile's URL: ``--url`` naming another
server without ``--token`` goes there without a credential rather than hand the
token to a server it was not issued for. The file is written with mode 0600.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_PROFILE = "default"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(Exception):
    """The configuration cannot be used as asked (unknown profile, unreadable file)."""


@dataclass(frozen=True)
class Profile:
    name: str
    url: str
    token: str | None = None


@dataclass(frozen=True)
class Connection:
    """Where requests go; ``profile`` names the profile used, if any; ``source`` says
    where the URL came from (for a message about it)."""

    url: str
    token: str | None
    profile: str | None = None
    source: str = "--url or ENTREPOT_URL"


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "entrepot" / "config.toml"


@dataclass
class Config:
    default: str | None
    profiles: dict[str, Profile]

    @classmethod
    def load(cls, path: Path | None = None) -> Config:
        path = path or config_path()
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(None, {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        profiles: dict[str, Profile] = {}
        table = raw.get("profiles", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [profiles] must be a table")
        for name, entry in table.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                raise ConfigError(f"{path}: profile {name!r} needs a url")
            token = entry.get("token")
            profiles[name] = Profile(name, entry["url"], token if isinstance(token, str) else None)
        default = raw.get("default")
        return cls(default if isinstance(default, str) else None, profiles)

    def save(self, path: Path | None = None) -> Path:
        """Write the file readable by its owner only (0600), replacing it whole."""
        path = path or config_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lines = [f"default = {_string(self.default)}", ""] if self.default else []
        for profile in self.profiles.values():
            lines.append(f"[profiles.{_key(profile.name)}]")
            lines.append(f"url = {_string(profile.url)}")
            if profile.token is not None:
                lines.append(f"token = {_string(profile.token)}")
            lines.append("")
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines))
            os.chmod(temporary, 0o600)  # whatever the umask, or an older file's mode
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return path

    def chosen(self, name: str | None) -> Profile | None:
        """The profile asked for (an unknown name is an error), else the default one."""
        if name is not None:
            if name not in self.profiles:
                raise ConfigError(
                    f"no profile {name!r} in {config_path()}; "
                    f"create it with: entrepot login --profile {name}"
                )
            return self.profiles[name]
        return self.profiles.get(self.default or DEFAULT_PROFILE)


def _key(name: str) -> str:
    """A TOML key: bare when it can be, else quoted."""
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _string(value: str | None) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def checked_url(url: str) -> str:
    """``url`` without its trailing slash, if it is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url!r} is not a server URL like {DEFAULT_URL}")
    return url.rstrip("/")


def resolve(url: str | None, token: str | None, profile: str | None) -> Connection:
    """The connection from the options (or their environment variables) and the config."""
    chosen = Config.load().chosen(profile)
    if chosen is None:
        if url is None:
            default = "the default: no --url, ENTREPOT_URL or profile (entrepot login) was given"
            return Connection(DEFAULT_URL, token, source=default)
        return Connection(checked_url(url), token)
    same_server = url is None or url.rstrip("/") == chosen.url.rstrip("/")
    if token is None and same_server:
        token = chosen.token
    source = f"profile {chosen.name!r} in {config_path()}" if url is None else None
    return Connection(
        checked_url(url or chosen.url), token, chosen.name, source or "--url or ENTREPOT_URL"
    )
