"""Field types and bases shared by the request and response models of every package."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field

from entrepot import jsonbody

SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"
FIELD_NAME = r"^[^\x00]{1,128}$"


def _storable(value: Any) -> Any:
    """Refuse what PostgreSQL text and jsonb cannot hold: NUL, lone surrogates, NaN."""
    try:
        jsonbody.check_storable(value)
        jsonbody.dumps(value)  # raises ValueError on NaN and infinities
    except jsonbody.JsonBodyError as exc:
        where = f" (at {exc.path})" if exc.path else ""
        raise ValueError(exc.message + where) from None
    except ValueError as exc:
        raise ValueError(f"not storable as JSON: {exc}") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_storable)]


_EMAIL = re.compile(r"[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\.[^@\s<>(),;:\"\[\]]+")


def _email(value: str) -> str:
    """An address's shape (one ``@``, a dotted domain, no spaces): whether it is
    delivered is the provider's business, not something a server can check."""
    if not _EMAIL.fullmatch(value):
        raise ValueError("not an email address (name@example.org)")
    return value


def _web_url(value: str) -> str:
    """An absolute http(s) URL with a host: what a browser can open from the catalogue."""
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a bad port or IPv6 literal
        ok = False
    if not ok or any(c.isspace() for c in value):
        raise ValueError("not an http(s) URL (https://example.org/...)")
    return value


Email = Annotated[str, Field(max_length=254), AfterValidator(_storable), AfterValidator(_email)]
WebUrl = Annotated[str, Field(max_length=2000), AfterValidator(_storable), AfterValidator(_web_url)]


class Page(BaseModel):
    next_cursor: str | None
