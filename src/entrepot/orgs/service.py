"""Organisation use cases: create one, see one, list the ones you belong to."""

from __future__ import annotations

from typing import Any

import asyncpg

from entrepot.auditing.log import record
from entrepot.orgs import repository as repo
from entrepot.pagination import decode_cursor, fingerprint, page
from entrepot.principal import Principal, can_see_org, require_platform_admin
from entrepot.problems import Conflict, NotFound
from entrepot.store.work import Reads, UnitOfWork


def org_out(org: repo.Org) -> dict[str, Any]:
    return {"id": str(org.id), "name": org.name, "title": org.title, "created_at": org.created_at}


async def create_org(
    work: UnitOfWork, principal: Principal, name: str, title: str
) -> dict[str, Any]:
    require_platform_admin(principal)
    conn = work.conn
    try:
        row = await repo.insert_org(conn, name, title)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"An organisation named {name!r} already exists.") from None
    await record(
        conn,
        principal,
        "org.created",
        f"org:{name}",
        org_id=row.id,
        details={"title": title},
    )
    return org_out(row)


async def get_org(reads: Reads, principal: Principal, name: str) -> dict[str, Any]:
    row = await repo.get_org(reads.conn, name)
    if row is None or not can_see_org(principal, row.id):
        raise NotFound(
            f"Organisation {name!r} does not exist or is not visible to you.", denial=True
        )
    return org_out(row)


async def list_orgs(
    reads: Reads, principal: Principal, *, cursor: str | None, limit: int
) -> dict[str, Any]:
    fp = fingerprint("orgs")
    after = decode_cursor(cursor, fp)[0] if cursor else None
    if after is not None and not isinstance(after, str):
        after = None
    only = None if principal.is_admin else principal.org_ids()
    rows = await repo.list_orgs(reads.conn, only=only, after=after, limit=limit + 1)
    return page([org_out(r) for r in rows], limit, fp, lambda item: [item["name"]])
