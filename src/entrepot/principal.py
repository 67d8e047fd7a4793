"""The authenticated caller, as every endpoint and policy check sees it, and the
decisions that depend on nothing but the caller (scopes, platform and organisation roles).

Decisions that depend on a dataset grant live in :mod:`entrepot.access.policy`.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Literal

from entrepot.problems import Forbidden

SCOPES = (
    "datasets:read",
    "records:read",
    "records:write",
    "changes:read",
    "webhooks:manage",
    "admin",
)
ALL_SCOPES = frozenset(SCOPES)
DEFAULT_APP_SCOPES = ("datasets:read", "records:read", "changes:read")
READ_SCOPES = frozenset(DEFAULT_APP_SCOPES)
ANONYMOUS_PLAN = "anonymous"

Kind = Literal["admin", "app", "user", "anonymous"]
Role = Literal["owner", "admin", "member"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``subject`` is stable across credentials of one caller
    (it scopes idempotency keys and names the actor in the audit log);
    ``credential`` names the key or token used."""

    kind: Kind
    subject: str
    credential: str
    scopes: frozenset[str]
    is_admin: bool = False
    app_id: uuid.UUID | None = None
    org_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    roles: dict[uuid.UUID, Role] = field(default_factory=dict)
    plan: str | None = None  # an app's plan; users are limited by the default plan
    # When the credential stops working by itself (an access token's exp, Unix time), so
    # that what is derived from it (a stream ticket) never outlives it. None: no such end.
    expires_at: int | None = None

    @property
    def share_key(self) -> str | None:
        """Whose share of limited resources (bulk connections) this caller draws on;
        None for platform administrators, who are not limited."""
        return None if self.is_admin else self.subject

    @property
    def actor(self) -> str:
        """Who the audit log says acted: a caller with no credential is ``anonymous``
        (its address is in the row's own ``ip``)."""
        return "anonymous" if self.kind == "anonymous" else self.subject

    def has_scope(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes

    def org_ids(self) -> list[uuid.UUID]:
        """The organisations this caller belongs to."""
        if self.org_id is not None:
            return [self.org_id]
        return list(self.roles)

    def role_in(self, org_id: uuid.UUID) -> Role | None:
        if self.is_admin:
            return "owner"
        if self.kind == "app":
            if self.org_id != org_id:
                return None
            return "admin" if "admin" in self.scopes else "member"
        return self.roles.get(org_id)


def anonymous(address: str | None) -> Principal:
    """A caller with no credential, reading open datasets only. Its subject is its
    client address (an IPv6 address's /64, which one host commonly holds whole), so
    rate limits and bulk shares are per address."""
    where = "unknown"
    if address:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            where = address
        else:
            net = ipaddress.ip_network(f"{ip}/64", strict=False) if ip.version == 6 else ip
            where = str(net)
    return Principal(
        "anonymous", f"anonymous:{where}", "anonymous", READ_SCOPES, plan=ANONYMOUS_PLAN
    )


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.has_scope(scope):
        raise Forbidden(
            f"This credential lacks the {scope!r} scope.", denial=True, required_scope=scope
        )


def require_platform_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Only platform administrators may do this.", denial=True)


def can_manage_org(principal: Principal, org_id: uuid.UUID) -> bool:
    return principal.role_in(org_id) in ("owner", "admin")


def can_see_org(principal: Principal, org_id: uuid.UUID) -> bool:
    return principal.role_in(org_id) is not None


def require_org_admin(principal: Principal, org_id: uuid.UUID) -> None:
    if not can_manage_org(principal, org_id):
        raise Forbidden("You must administer the owning organisation to do this.", denial=True)
