"""Access requests and grants: asking, deciding, narrowing, revoking.

Every mutation writes its audit row in its own transaction, and every change
to the set of live grants is announced to all replicas (``grants``) so the
access resolver's caches drop it at commit: a revoked grant stops working
everywhere at once, and a new grant works everywhere at once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from entrepot import jsonbody
from entrepot.access import repository as repo
from entrepot.access.models import (
    GRANTABLE_SCOPES,
    AccessRequestApprove,
    AccessRequestCreate,
    AccessRequestReject,
)
from entrepot.access.resolver import AccessResolver
from entrepot.apps import repository as apps_repo
from entrepot.audit.log import record
from entrepot.auth.principal import Principal
from entrepot.catalog.record_schema import RecordSchema
from entrepot.pagination import decode_cursor, encode_cursor, fingerprint, invalid_cursor
from entrepot.policy import can_manage_org, dataset_not_found
from entrepot.problems import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from entrepot.records.query import row_filter_conditions
from entrepot.store.notify import announce
from entrepot.store.types import Conn
from entrepot.uuids import parse_uuid

AUTO = "auto"
# Auto-approval hands out read access only; a request that asks to write waits
# for a person, whatever the dataset says.
AUTO_APPROVABLE = frozenset(GRANTABLE_SCOPES) - {"records:write"}


def request_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "dataset": row["dataset"],
        "app": str(row["app_id"]),
        "scopes": list(row["scopes"]),
        "reason": row["reason"],
        "status": row["status"],
        "note": row["note"],
        "requested_by": row["requested_by"],
        "created_at": row["created_at"],
        "decided_at": row["decided_at"],
        "decided_by": row["decided_by"],
        "grant_id": str(row["grant_id"]) if row["grant_id"] is not None else None,
    }


def grant_out(row: asyncpg.Record, viewer: Principal | None = None) -> dict[str, Any]:
    """A grant as ``viewer`` sees it (``None``: as its dataset's owners see it).

    The grantee's side never learns the names of fields its grant hides, so
    conditions of the row filter on hidden fields are left out for it.
    """
    fields = list(row["fields"]) if row["fields"] is not None else None
    row_filter = jsonbody.loads_trusted(row["row_filter"]) if row["row_filter"] else None
    owner_view = viewer is None or can_manage_org(viewer, row["dataset_org_id"])
    if row_filter is not None and fields is not None and not owner_view:
        row_filter = {k: v for k, v in row_filter.items() if k in fields}
    return {
        "id": str(row["id"]),
        "dataset": row["dataset"],
        "app": str(row["app_id"]),
        "scopes": list(row["scopes"]),
        "fields": fields,
        "row_filter": row_filter,
        "expires_at": row["expires_at"],
        "revoked_at": row["revoked_at"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "status": row["status"],
    }


def _invalid(detail: str, path: str, message: str) -> Unprocessable:
    return Unprocessable(detail, errors=[{"path": path, "message": message}])


def _managed_orgs(principal: Principal) -> list[uuid.UUID] | None:
    """The organisations the caller administers; None means every one (platform admin)."""
    if principal.is_admin:
        return None
    return [o for o in principal.org_ids() if can_manage_org(principal, o)]


def _may_see(principal: Principal, row: asyncpg.Record) -> bool:
    return (
        principal.app_id == row["app_id"]
        or can_manage_org(principal, row["app_org_id"])
        or can_manage_org(principal, row["dataset_org_id"])
    )


def _future(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise _invalid("expires_at must be in the future.", "/expires_at", "in the past")
    return moment


def _page_position(cursor: str | None, fp: str) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    position = decode_cursor(cursor, fp)
    invalid = invalid_cursor()
    if len(position) != 2 or not all(isinstance(p, str) for p in position):
        raise invalid
    try:
        return datetime.fromisoformat(position[0]), uuid.UUID(position[1])
    except ValueError:
        raise invalid from None


def _page(rows: list[asyncpg.Record], limit: int, fp: str, out: Any) -> dict[str, Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = None
    if more and rows:
        last = rows[-1]
        cursor = encode_cursor([last["created_at"].isoformat(), str(last["id"])], fp)
    return {"data": [out(r) for r in rows], "next_cursor": cursor}


def _filter_app(raw: str | None) -> uuid.UUID | None:
    if raw is None or raw == "":
        return None
    app_id = parse_uuid(raw)
    if app_id is None:
        raise BadRequest(
            "app must be an application id.",
            errors=[{"path": "query:app", "message": "not an application id"}],
        )
    return app_id


def _check_fields(fields: list[str], schema: RecordSchema, primary_key: str | None) -> list[str]:
    errors = [
        {"path": f"/fields/{i}", "message": f"{name!r} is not a top-level schema property"}
        for i, name in enumerate(fields)
        if not schema.has_property(name)
    ]
    if errors:
        raise Unprocessable("fields must name top-level schema properties.", errors=errors)
    if primary_key is not None and primary_key not in fields:
        # Record ids are the primary key's values: hiding it would hide nothing.
        raise _invalid(
            f"fields must include the primary key {primary_key!r}: record ids reveal it.",
            "/fields",
            "the primary key cannot be hidden",
        )
    return list(dict.fromkeys(fields))


def _check_row_filter(row_filter: dict[str, Any], schema: RecordSchema) -> None:
    try:
        row_filter_conditions(row_filter, schema)
    except BadRequest as exc:
        raise Unprocessable(exc.detail, errors=exc.errors) from None


class AccessService:
    """``resolver`` is this replica's grant cache: dropped right after a commit that
    changes grants, so this replica never answers from it before the NOTIFY lands."""

    def __init__(self, pool: asyncpg.Pool, resolver: AccessResolver | None = None) -> None:
        self.pool = pool
        self.resolver = resolver

    def _forget_grants(self) -> None:
        if self.resolver is not None:
            self.resolver.invalidate()

    # --- requests -------------------------------------------------------

    async def create_request(
        self, principal: Principal, dataset: str, body: AccessRequestCreate
    ) -> dict[str, Any]:
        scopes = sorted(set(body.scopes))
        async with self.pool.acquire() as conn, conn.transaction():
            ds = await repo.dataset_by_name(conn, dataset)
            if ds is None:
                raise dataset_not_found(dataset)
            app = await self._requesting_app(conn, principal, body.app)
            extra = set(scopes) - set(app["scopes"])
            if extra:
                raise _invalid(
                    "An application can only ask for scopes it holds.",
                    "/scopes",
                    f"not held by the app: {sorted(extra)}",
                )
            if app["org_id"] == ds["org_id"]:
                raise _invalid(
                    "The application's organisation owns this dataset; it needs no grant.",
                    "/app",
                    "owner of the dataset",
                )
            await repo.lock_request_slot(conn, app["id"], ds["id"])
            if await repo.pending_exists(conn, app["id"], ds["id"]):
                raise Conflict(
                    f"Application {body.app!r} already has a pending request for {dataset!r}."
                )
            request_id = await repo.insert_request(
                conn,
                dataset_id=ds["id"],
                app_id=app["id"],
                scopes=scopes,
                reason=body.reason,
                requested_by=principal.subject,
            )
            await record(
                conn,
                principal,
                "access_request.created",
                f"access_request:{request_id}",
                org_id=app["org_id"],
                app_id=app["id"],
                details={"dataset": dataset, "scopes": scopes},
            )
            if ds["auto_approve"] and set(scopes) <= AUTO_APPROVABLE:
                row = await repo.get_request(conn, request_id, lock=True)
                assert row is not None
                await self._approve(conn, principal, row, scopes, None, None, None, None, AUTO)
            row = await repo.get_request(conn, request_id)
        assert row is not None
        if row["grant_id"] is not None:
            self._forget_grants()
        return request_out(row)

    async def _requesting_app(self, conn: Conn, principal: Principal, raw: str) -> asyncpg.Record:
        unknown = Unprocessable(
            f"Application {raw!r} does not exist or you may not ask on its behalf.",
            errors=[{"path": "/app", "message": "unknown application"}],
            denial=True,
        )
        app_id = parse_uuid(raw)
        if app_id is None:
            raise unknown
        app = await apps_repo.get_app(conn, app_id)
        if app is None:
            raise unknown
        if principal.app_id != app_id and not can_manage_org(principal, app["org_id"]):
            raise unknown
        if app["disabled"]:
            raise _invalid(f"Application {raw!r} is disabled.", "/app", "disabled")
        return app

    async def _request(
        self, conn: Any, principal: Principal, raw_id: str, *, lock: bool = False
    ) -> asyncpg.Record:
        hidden = NotFound(
            f"Access request {raw_id!r} does not exist or is not visible to you.", denial=True
        )
        request_id = parse_uuid(raw_id)
        if request_id is None:
            raise hidden
        row = await repo.get_request(conn, request_id, lock=lock)
        if row is None or not _may_see(principal, row):
            raise hidden
        return row

    async def get_request(self, principal: Principal, raw_id: str) -> dict[str, Any]:
        return request_out(await self._request(self.pool, principal, raw_id))

    async def list_requests(
        self,
        principal: Principal,
        *,
        status: str | None,
        dataset: str | None,
        app: str | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        app_id = _filter_app(app)
        fp = fingerprint("access_requests", status, dataset, app)
        rows = await repo.list_requests(
            self.pool,
            orgs=_managed_orgs(principal),
            own_app=principal.app_id,
            status=status,
            dataset=dataset or None,
            app_id=app_id,
            after=_page_position(cursor, fp),
            limit=limit + 1,
        )
        return _page(rows, limit, fp, request_out)

    async def _decidable(self, conn: Conn, principal: Principal, raw_id: str) -> asyncpg.Record:
        row = await self._request(conn, principal, raw_id, lock=True)
        if not can_manage_org(principal, row["dataset_org_id"]):
            raise Forbidden(
                "Only administrators of the dataset's organisation may decide this request.",
                denial=True,
            )
        if row["status"] != "pending":
            raise Conflict(f"The request is already {row['status']}.")
        return row

    async def approve(
        self, principal: Principal, raw_id: str, body: AccessRequestApprove
    ) -> dict[str, Any]:
        expires_at = _future(body.expires_at)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._decidable(conn, principal, raw_id)
            requested = set(row["scopes"])
            scopes = sorted(set(body.scopes) if body.scopes is not None else requested)
            if not set(scopes) <= requested:
                raise _invalid(
                    "Approval can only narrow the requested scopes.",
                    "/scopes",
                    f"not requested: {sorted(set(scopes) - requested)}",
                )
            ds = await repo.dataset_for_grant(conn, row["dataset_id"])
            if ds is None:
                raise NotFound(f"Dataset {row['dataset']!r} no longer exists.")
            schema = RecordSchema.compile(jsonbody.loads_trusted(ds["schema"]))
            fields = (
                _check_fields(body.fields, schema, ds["primary_key"])
                if body.fields is not None
                else None
            )
            row_filter = body.row_filter or None
            if row_filter is not None:
                _check_row_filter(row_filter, schema)
            if (fields is not None or row_filter is not None) and "records:write" in scopes:
                raise _invalid(
                    "Narrowed grants are read-only: drop records:write or the narrowing.",
                    "/scopes",
                    "records:write cannot be granted with fields or row_filter",
                )
            await self._approve(
                conn, principal, row, scopes, fields, row_filter, expires_at, body.note, None
            )
            updated = await repo.get_request(conn, row["id"])
        self._forget_grants()
        assert updated is not None
        return request_out(updated)

    async def _approve(
        self,
        conn: Conn,
        principal: Principal,
        row: asyncpg.Record,
        scopes: list[str],
        fields: list[str] | None,
        row_filter: dict[str, Any] | None,
        expires_at: datetime | None,
        note: str | None,
        actor: str | None,
    ) -> uuid.UUID:
        decided_by = actor or principal.subject
        grant_id = await repo.insert_grant(
            conn,
            dataset_id=row["dataset_id"],
            app_id=row["app_id"],
            scopes=scopes,
            fields=fields,
            row_filter=jsonbody.dumps(row_filter) if row_filter is not None else None,
            expires_at=expires_at,
            created_by=decided_by,
        )
        superseded = await repo.revoke_superseded(conn, row["app_id"], row["dataset_id"], grant_id)
        await repo.decide_request(
            conn,
            row["id"],
            status="approved",
            note=note,
            decided_by=decided_by,
            grant_id=grant_id,
        )
        await announce(conn, "grants")
        org_id = row["dataset_org_id"]
        await record(
            conn,
            principal,
            "access_request.approved",
            f"access_request:{row['id']}",
            org_id=org_id,
            actor=actor,
            details={"grant": str(grant_id), "auto": actor == AUTO},
        )
        await record(
            conn,
            principal,
            "grant.created",
            f"grant:{grant_id}",
            org_id=org_id,
            actor=actor,
            details={
                "dataset": row["dataset"],
                "app": str(row["app_id"]),
                "scopes": scopes,
                "fields": fields,
                "row_filter": row_filter,
                "expires_at": expires_at,
            },
        )
        for old in superseded:
            await record(
                conn,
                principal,
                "grant.revoked",
                f"grant:{old}",
                org_id=org_id,
                actor=actor,
                details={"reason": "superseded", "by": str(grant_id)},
            )
        return grant_id

    async def reject(
        self, principal: Principal, raw_id: str, body: AccessRequestReject
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._decidable(conn, principal, raw_id)
            await repo.decide_request(
                conn,
                row["id"],
                status="rejected",
                note=body.note,
                decided_by=principal.subject,
                grant_id=None,
            )
            await record(
                conn,
                principal,
                "access_request.rejected",
                f"access_request:{row['id']}",
                org_id=row["dataset_org_id"],
                details={"note": body.note},
            )
            updated = await repo.get_request(conn, row["id"])
        assert updated is not None
        return request_out(updated)

    # --- grants -----------------------------------------------------------

    async def _grant(
        self, conn: Any, principal: Principal, raw_id: str, *, lock: bool = False
    ) -> asyncpg.Record:
        hidden = NotFound(f"Grant {raw_id!r} does not exist or is not visible to you.", denial=True)
        grant_id = parse_uuid(raw_id)
        if grant_id is None:
            raise hidden
        row = await repo.get_grant(conn, grant_id, lock=lock)
        if row is None or not _may_see(principal, row):
            raise hidden
        return row

    async def get_grant(self, principal: Principal, raw_id: str) -> dict[str, Any]:
        return grant_out(await self._grant(self.pool, principal, raw_id), principal)

    async def list_grants(
        self,
        principal: Principal,
        *,
        dataset: str | None,
        app: str | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        app_id = _filter_app(app)
        fp = fingerprint("grants", dataset, app)
        rows = await repo.list_grants(
            self.pool,
            orgs=_managed_orgs(principal),
            own_app=principal.app_id,
            dataset=dataset or None,
            app_id=app_id,
            after=_page_position(cursor, fp),
            limit=limit + 1,
        )
        return _page(rows, limit, fp, lambda row: grant_out(row, principal))

    async def revoke(self, principal: Principal, raw_id: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._grant(conn, principal, raw_id, lock=True)
            owner = can_manage_org(principal, row["dataset_org_id"])
            if not owner and not can_manage_org(principal, row["app_org_id"]):
                raise Forbidden(
                    "Revoking a grant needs an administrator of the dataset's organisation "
                    "or of the grantee's.",
                    denial=True,
                )
            if row["revoked_at"] is not None:
                return  # already revoked: DELETE is idempotent
            await repo.revoke_grant(conn, row["id"])
            await announce(conn, "grants")
            await record(
                conn,
                principal,
                "grant.revoked",
                f"grant:{row['id']}",
                org_id=row["dataset_org_id"] if owner else row["app_org_id"],
                app_id=row["app_id"],
                details={
                    "dataset": row["dataset"],
                    "reason": "revoked" if owner else "relinquished",
                },
            )
        self._forget_grants()
