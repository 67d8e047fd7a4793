"""Reading ``postgresql://`` URLs without ever repeating their user or password.

Settings refuse a malformed URL at start, and error messages name the hosts a
URL points at; both read the URL the way asyncpg (``urllib.parse``) will.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

SCHEMES = ("postgresql", "postgres")
_NETLOC_END = re.compile(r"[/?#]")


def _split(url: str) -> tuple[str, str, str]:
    """Scheme, netloc (``user:password@host:port,...``) and what follows the netloc."""
    scheme, _, rest = url.partition("://")
    end = _NETLOC_END.search(rest)
    cut = end.start() if end else len(rest)
    return scheme, rest[:cut], rest[cut:]


def _userinfo_cut_short(netloc: str, tail: str) -> bool:
    """An '@' after the netloc, outside a query value: a password holding '/', '?' or '#'."""
    if "@" in netloc or "@" not in tail:
        return False
    return "=" not in tail[: tail.index("@")]


def check_postgres_url(url: str) -> None:
    """Raise ValueError, naming no part of the URL, if asyncpg would misread it."""
    scheme, netloc, tail = _split(url)
    if "://" not in url or scheme not in SCHEMES:
        raise ValueError("must be a postgresql:// URL, e.g. postgresql://user:password@host/db")
    if _userinfo_cut_short(netloc, tail):
        raise ValueError(
            "has a '/', '?' or '#' in its user or password; percent-encode them (%2F, %3F, %23)"
        )
    for host in netloc.rpartition("@")[2].split(","):
        after_host = host
        if host.startswith("["):
            closing = host.find("]")
            if closing < 0:
                raise ValueError("has an unclosed '[' in a host")
            after_host = host[closing + 1 :]
            if after_host and not after_host.startswith(":"):
                raise ValueError("has a malformed IPv6 host")
        port = after_host.rpartition(":")[2] if ":" in after_host else ""
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError("has a port that is not a number from 1 to 65535")


def describe_hosts(url: str) -> str:
    """``host:port[,host:port]`` for messages; never the user, the password or the query."""
    _, netloc, tail = _split(url)
    if _userinfo_cut_short(netloc, tail):
        return "the host of ENTREPOT_DATABASE_URL"
    hosts = netloc.rpartition("@")[2]
    if hosts:
        return hosts
    query = parse_qs(tail.partition("?")[2]).get("host")
    return ",".join(query) if query else "the default host"
