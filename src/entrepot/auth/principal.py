"""The authenticated caller, as every endpoint and policy check sees it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

SCOPES = frozenset(
    {"datasets:read", "records:read", "records:write", "changes:read", "webhooks:manage", "admin"}
)


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    org_id: uuid.UUID | None
    is_admin: bool
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def subject(self) -> str:
        """Stable identifier used to scope idempotency keys and audit rows."""
        return f"key:{self.key_id}"

    def has_scope(self, scope: str) -> bool:
        return self.is_admin or "admin" in self.scopes or scope in self.scopes
