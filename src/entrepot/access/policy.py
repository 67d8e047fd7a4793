"""Who may do what with a dataset: the decisions that depend on a grant.

Endpoints state who may call them in their signature; the decisions that
depend on the resource live here. A resource the caller may not see is
reported as missing (404), never as forbidden, so its existence does not
leak; a visible resource the caller may not change is a 403.
"""

from __future__ import annotations

from entrepot.access.resolver import DatasetAccess
from entrepot.problems import Forbidden, NotFound


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
            required_scope=scope,
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
