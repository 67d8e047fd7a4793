"""Who may do what: every access decision in one place.

Endpoints state who may call them in their signature; the decisions that
depend on the resource live here. A resource the caller may not see is
reported as missing (404), never as forbidden, so its existence does not
leak; a visible resource the caller may not change is a 403.
"""

from __future__ import annotations

import uuid

from entrepot.access.resolver import DatasetAccess
from entrepot.auth.principal import Principal
from entrepot.problems import Forbidden, NotFound


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.has_scope(scope):
        raise Forbidden(f"This credential lacks the {scope!r} scope.", denial=True)


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


def dataset_not_found(name: str) -> NotFound:
    return NotFound(f"Dataset {name!r} does not exist or is not visible to you.", denial=True)


def visible(access: DatasetAccess | None, name: str) -> DatasetAccess:
    if access is None:
        raise dataset_not_found(name)
    return access


def require_dataset_scope(access: DatasetAccess, scope: str) -> DatasetAccess:
    if not access.allows(scope):
        raise Forbidden(
            f"Your access to {access.meta.name!r} does not include {scope!r}.",
            denial=True,
            target_org=access.meta.org_id,
        )
    return access


def readable_records(access: DatasetAccess) -> DatasetAccess:
    return require_dataset_scope(access, "records:read")


def writable_records(access: DatasetAccess) -> DatasetAccess:
    require_dataset_scope(access, "records:write")
    if access.narrowed:
        raise Forbidden(
            "A narrowed grant is read-only.", denial=True, target_org=access.meta.org_id
        )
    return access
