"""Credentials: an API key, or OAuth 2.0 client credentials (RFC 6749 4.4).

The token cache is sans-IO: the clients ask it for a valid token, fetch one
from ``POST /oauth/token`` when it has none (or the one it has expires within
``refresh_margin``), and tell it when the server refused a token (a 401), so
the next request fetches a fresh one. Concurrent requests share one fetch
(the clients hold a lock around it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ApiKey:
    """An API key (or any bearer token obtained elsewhere), sent as ``Authorization: Bearer``."""

    key: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("an API key is a non-empty string")


@dataclass(frozen=True)
class ClientCredentials:
    """An application's ``client_id`` and ``client_secret``; tokens are fetched as needed.

    ``scope`` asks for a subset of the app's scopes (space-separated, or a list).
    A token is refreshed ``refresh_margin`` seconds before it expires (or after
    90% of its life, for short-lived tokens).
    """

    client_id: str
    client_secret: str = field(repr=False)
    scope: str | list[str] | None = None
    refresh_margin: float = 60.0

    def form(self) -> dict[str, str]:
        body = {"grant_type": "client_credentials"}
        if self.scope:
            body["scope"] = self.scope if isinstance(self.scope, str) else " ".join(self.scope)
        return body


Credential = ApiKey | ClientCredentials


@dataclass
class Token:
    access_token: str = field(repr=False)
    expires_at: float
    refresh_at: float
    scope: str | None = None


class TokenCache:
    """The current access token of a :class:`ClientCredentials`, and when to replace it."""

    def __init__(
        self, credentials: ClientCredentials, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.credentials = credentials
        self.clock = clock
        self.token: Token | None = None
        self.fetched = 0

    def valid(self) -> str | None:
        """The cached token, unless it is missing or due for refresh."""
        token = self.token
        if token is None or self.clock() >= token.refresh_at:
            return None
        return token.access_token

    def store(self, answer: Mapping[str, Any], *, asked_at: float) -> str:
        """Keep the token of a ``/oauth/token`` answer; ``asked_at`` is the clock before asking."""
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise ValueError("the token endpoint answered without an access_token")
        lifetime = float(answer.get("expires_in") or 0)
        margin = min(self.credentials.refresh_margin, lifetime * 0.1)
        scope = answer.get("scope")
        self.token = Token(
            access,
            expires_at=asked_at + lifetime,
            refresh_at=asked_at + lifetime - margin,
            scope=scope if isinstance(scope, str) else None,
        )
        self.fetched += 1
        return access

    def refused(self, access_token: str) -> None:
        """The server answered 401 to ``access_token``: forget it (unless already replaced)."""
        if self.token is not None and self.token.access_token == access_token:
            self.token = None


__all__ = ["ApiKey", "ClientCredentials", "Credential", "Token", "TokenCache"]
