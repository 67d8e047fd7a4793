"""Password hashing with Argon2id (argon2-cffi's defaults, RFC 9106 profile).

Verification of an unknown account still runs one full Argon2 verification
(against a dummy hash made with the same parameters), so the time a login
takes does not tell an attacker which emails exist. Hashing is CPU- and
memory-bound: callers on the event loop run it in a worker thread.
"""

from __future__ import annotations

import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


def _encode(password: str) -> bytes:
    # JSON may carry lone surrogates; they must not turn a login into a 500.
    return password.encode("utf-8", "surrogatepass")


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()  # Argon2id with the library's defaults
        self._dummy: str | None = None
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        return self.hasher.hash(_encode(password))

    def _dummy_hash(self) -> str:
        with self._lock:
            if self._dummy is None:
                self._dummy = self.hash(secrets.token_urlsafe(24))
            return self._dummy

    def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches ``stored``; an absent hash costs the same and fails."""
        if stored is None:
            self._check(self._dummy_hash(), password)
            return False
        return self._check(stored, password)

    def _check(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, _encode(password))
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True when ``stored`` was made with weaker parameters than the current ones."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return True


passwords = Passwords()
