"""API key material: 256-bit random secrets, stored only as SHA-256 digests.

Keys are looked up by digest, so the comparison happens inside a B-tree on a
value the caller cannot steer byte by byte: no timing oracle, no plaintext at
rest. The prefix is for people (lists, logs), never for lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "ent_"
DISPLAY_PREFIX_LEN = 12


@dataclass(frozen=True)
class NewKey:
    secret: str
    prefix: str
    digest: bytes


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def display_prefix(secret: str) -> str:
    return secret[:DISPLAY_PREFIX_LEN]


def new_key(secret: str | None = None) -> NewKey:
    value = secret if secret is not None else KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(secret=value, prefix=display_prefix(value), digest=digest(value))
