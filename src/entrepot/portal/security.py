"""What keeps the portal's forms and cookies safe: CSRF tokens, cookie attributes and the
headers every page is answered with.

A form's CSRF token is an HMAC, under the platform's portal key, of the browser's
cookie token (a session's, or before sign-in an anonymous one): tied to that
browser's session, new with every new session, checked in constant time, and
unforgeable by a page that can plant a cookie but does not know the key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

import asyncpg

from entrepot.portal import repository as repo

COOKIE = "entrepot_portal"
COOKIE_PATH = "/portal"
CSRF_FIELD = "csrf_token"
KEY_NAME = "csrf"
# No inline script or style, nothing from another host; forms post only to us; no
# framing (clickjacking). htmx is configured by a <meta> tag, not inline script.
POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages carry CSRF tokens and, once, secrets: never kept by a cache or the back button.
    "Cache-Control": "no-store",
}


class PortalKeys:
    """The platform's portal key, read (or made) once per process on first use."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._secret: bytes | None = None
        self._lock = asyncio.Lock()

    async def secret(self) -> bytes:
        if self._secret is None:
            async with self._lock:
                if self._secret is None:
                    self._secret = await repo.signing_key(
                        self.pool, KEY_NAME, secrets.token_bytes(32)
                    )
        return self._secret


def csrf_token(secret: bytes, cookie_token: str) -> str:
    mac = hmac.new(secret, b"csrf\0" + cookie_token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_valid(secret: bytes, cookie_token: str, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(csrf_token(secret, cookie_token), given)
