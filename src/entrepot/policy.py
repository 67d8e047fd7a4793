"""Who may do what: every access decision in one place.

Endpoints state the scope they need in their signature; the decisions that
depend on the resource (which org owns it, its visibility) live here. A
resource the caller may not see is reported as missing (404), never as
forbidden, so its existence does not leak.
"""

from __future__ import annotations

import uuid

from entrepot.auth.principal import Principal
from entrepot.catalog.registry import DatasetMeta
from entrepot.problems import Forbidden, NotFound


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.has_scope(scope):
        raise Forbidden(f"This credential lacks the {scope!r} scope.")


def require_platform_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Only platform administrators may do this.")


def can_manage_org(principal: Principal, org_id: uuid.UUID) -> bool:
    return principal.is_admin or (principal.org_id == org_id and principal.has_scope("admin"))


def require_org_admin(principal: Principal, org_id: uuid.UUID) -> None:
    if not can_manage_org(principal, org_id):
        raise Forbidden("You must administer the owning organisation to do this.")


def can_see_dataset(principal: Principal, visibility: str, org_id: uuid.UUID) -> bool:
    return principal.is_admin or visibility == "public" or principal.org_id == org_id


def visible_dataset(principal: Principal, meta: DatasetMeta) -> DatasetMeta:
    if not can_see_dataset(principal, meta.visibility, meta.org_id):
        raise NotFound(f"Dataset {meta.name!r} does not exist or is not visible to you.")
    return meta


def readable_records(principal: Principal, meta: DatasetMeta) -> DatasetMeta:
    visible_dataset(principal, meta)
    require_scope(principal, "records:read")
    return meta


def writable_records(principal: Principal, meta: DatasetMeta) -> DatasetMeta:
    visible_dataset(principal, meta)
    require_scope(principal, "records:write")
    if not (principal.is_admin or principal.org_id == meta.org_id):
        raise Forbidden(f"Writing to {meta.name!r} needs a grant with records:write.")
    return meta
