"""Resolve what a principal may do with one dataset.

The answer combines four sources, strongest first: platform admin, owning
organisation, a live grant (possibly narrowed to some fields and rows), and
visibility (`public` and `open` datasets are read by every authenticated caller;
a caller with no credential reads `open` ones and nothing else). Grant lookups
are cached per process for at most ``ttl`` seconds and dropped at once when any
replica announces a change (see :mod:`entrepot.store.notify`), so a revoked grant
stops working everywhere within a second at worst.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg
import orjson

from entrepot.components import Components
from entrepot.datasets.registry import DatasetMeta, DatasetRegistry
from entrepot.principal import ALL_SCOPES, Principal
from entrepot.problems import NotFound, Problem, Unauthorized
from entrepot.store.types import Executor

READABLE_BY_ALL = frozenset({"public", "open"})  # every authenticated caller reads these
PUBLIC_SCOPES = frozenset({"datasets:read", "records:read", "changes:read"})
MEMBER_SCOPES = ALL_SCOPES - {"admin"}

LIVE_GRANT = """
SELECT id, scopes, fields, row_filter::text AS row_filter
FROM grants
WHERE app_id = $1 AND dataset_id = $2 AND revoked_at IS NULL
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY created_at DESC
LIMIT 1
"""


def readable_visibilities(principal: Principal) -> list[str]:
    """The visibilities that let this caller read a dataset it has no other claim to."""
    return ["open"] if principal.kind == "anonymous" else sorted(READABLE_BY_ALL)


@dataclass(frozen=True)
class Grant:
    id: uuid.UUID
    scopes: frozenset[str]
    fields: frozenset[str] | None
    row_filter: dict[str, Any] | None


class DatasetAccess(NamedTuple):
    """What one principal may do with one dataset."""

    meta: DatasetMeta
    via: str
    scopes: frozenset[str]
    fields: frozenset[str] | None = None
    row_filter: dict[str, Any] | None = None
    grant_id: uuid.UUID | None = None

    @property
    def narrowed(self) -> bool:
        return self.fields is not None or bool(self.row_filter)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


class AccessResolver:
    def __init__(self, pool: asyncpg.Pool, registry: DatasetRegistry, ttl: float) -> None:
        self.pool = pool
        self.registry = registry
        self.ttl = ttl
        self._grants: dict[tuple[uuid.UUID, int], tuple[float, Grant | None]] = {}

    def invalidate(self) -> None:
        self._grants.clear()

    def subscribe(self, parts: Components) -> None:
        """Grants, apps and datasets all shape access: any announced change drops it."""
        parts.on_invalidate(lambda _topic: self.invalidate())

    async def live_grant(
        self, app_id: uuid.UUID, dataset_id: int, conn: Executor | None = None
    ) -> Grant | None:
        key = (app_id, dataset_id)
        hit = self._grants.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        row = await (conn or self.pool).fetchrow(LIVE_GRANT, app_id, dataset_id)
        grant = None
        if row is not None:
            grant = Grant(
                id=row["id"],
                scopes=frozenset(row["scopes"]),
                fields=frozenset(row["fields"]) if row["fields"] is not None else None,
                row_filter=orjson.loads(row["row_filter"]) if row["row_filter"] else None,
            )
        if self.ttl > 0:
            if len(self._grants) > 50_000:
                self._grants.clear()
            self._grants[key] = (time.monotonic() + self.ttl, grant)
        return grant

    async def resolve(
        self, principal: Principal, meta: DatasetMeta, conn: Executor | None = None
    ) -> DatasetAccess | None:
        """None when the dataset must look nonexistent to this principal."""
        if principal.kind == "anonymous":  # open datasets only, whoever owns them
            if meta.visibility != "open":
                return None
            return DatasetAccess(meta, "open", PUBLIC_SCOPES & principal.scopes)
        if principal.is_admin:
            return DatasetAccess(meta, "admin", ALL_SCOPES)
        role = principal.role_in(meta.org_id)
        if role is not None:
            scopes = principal.scopes if principal.kind == "app" else MEMBER_SCOPES
            if role in ("owner", "admin"):
                scopes = scopes | {"admin"} if principal.kind == "user" else scopes
            return DatasetAccess(meta, "owner", frozenset(scopes))
        if principal.app_id is not None:
            grant = await self.live_grant(principal.app_id, meta.id, conn)
            if grant is not None and meta.visibility in READABLE_BY_ALL:
                # Anyone may read a public dataset in full: a grant only adds scopes.
                scopes = (grant.scopes | PUBLIC_SCOPES) & principal.scopes
                return DatasetAccess(meta, "grant", scopes, grant_id=grant.id)
            if grant is not None:
                return DatasetAccess(
                    meta,
                    "grant",
                    grant.scopes & principal.scopes,
                    grant.fields,
                    grant.row_filter,
                    grant.id,
                )
        if meta.visibility in READABLE_BY_ALL:
            return DatasetAccess(meta, "public", PUBLIC_SCOPES & principal.scopes)
        return None

    async def for_dataset(
        self, principal: Principal, name: str, conn: Executor | None = None
    ) -> DatasetAccess:
        """The principal's access to dataset ``name``; 404 (audited) if it may not see it.

        Cache misses read on ``conn`` when given: a request holding a connection
        never asks the pool for a second one.
        """
        detail = f"Dataset {name!r} does not exist or is not visible to you."
        try:
            meta = await self.registry.get(name, conn)
        except NotFound:
            raise self._hidden(principal, detail, None) from None
        access = await self.resolve(principal, meta, conn)
        if access is None:  # answered as if missing; its owners see the attempt
            raise self._hidden(principal, detail, meta.org_id)
        return access

    @staticmethod
    def _hidden(principal: Principal, detail: str, org_id: uuid.UUID | None) -> Problem:
        """A dataset this caller may not see: missing to a credential, and to a caller
        without one, the 401 every route gives it (whether the dataset exists or not)."""
        if principal.kind == "anonymous":
            return Unauthorized.missing()
        return NotFound(detail, denial=True, target_org=org_id)
