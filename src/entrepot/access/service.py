"""Access requests and grants: asking, deciding, narrowing, revoking.

Every mutation writes its audit row in the request's transaction (the edge's
unit of work), and every change to the set of live grants is announced to all
replicas (``grants``) once it commits, so the access resolver's caches drop it:
a revoked grant stops working everywhere at once, and a new grant works
everywhere at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
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
from entrepot.access.policy import dataset_not_found
from entrepot.access.resolver import AccessResolver
from entrepot.access.shaping import (
    check_fields,
    check_row_filter,
    filter_app,
    future_moment,
    grant_out,
    invalid,
    managed_orgs,
    may_see,
    page_of_rows,
    page_position,
    request_out,
)
from entrepot.apps import repository as apps_repo
from entrepot.auditing.log import record
from entrepot.pagination import fingerprint
from entrepot.principal import Principal, can_manage_org
from entrepot.problems import Conflict, Forbidden, NotFound, Unprocessable
from entrepot.schema.record_schema import RecordSchema
from entrepot.store.types import Conn
from entrepot.store.work import Reads, UnitOfWork
from entrepot.uuids import parse_uuid

AUTO = "auto"
# Auto-approval hands out read access only; a request that asks to write waits
# for a person, whatever the dataset says.
AUTO_APPROVABLE = frozenset(GRANTABLE_SCOPES) - {"records:write"}


class AccessService:
    """``resolver`` is this replica's grant cache: dropped right after a commit that
    changes grants (an effect of the unit of work), so this replica never answers
    from it before the NOTIFY lands."""

    def __init__(self, resolver: AccessResolver | None = None) -> None:
        self.resolver = resolver

    def _forget_grants(self) -> None:
        if self.resolver is not None:
            self.resolver.invalidate()

    # --- requests -------------------------------------------------------

    async def create_request(
        self, work: UnitOfWork, principal: Principal, dataset: str, body: AccessRequestCreate
    ) -> dict[str, Any]:
        scopes = sorted(set(body.scopes))
        conn = work.conn
        ds = await repo.dataset_by_name(conn, dataset)
        if ds is None:
            raise dataset_not_found(dataset)
        app = await self._requesting_app(conn, principal, body.app)
        extra = set(scopes) - set(app.scopes)
        if extra:
            raise invalid(
                "An application can only ask for scopes it holds.",
                "/scopes",
                f"not held by the app: {sorted(extra)}",
            )
        if app.org_id == ds["org_id"]:
            raise invalid(
                "The application's organisation owns this dataset; it needs no grant.",
                "/app",
                "owner of the dataset",
            )
        await repo.lock_request_slot(conn, app.id, ds["id"])
        if await repo.pending_exists(conn, app.id, ds["id"]):
            raise Conflict(
                f"Application {body.app!r} already has a pending request for {dataset!r}."
            )
        request_id = await repo.insert_request(
            conn,
            dataset_id=ds["id"],
            app_id=app.id,
            scopes=scopes,
            reason=body.reason,
            requested_by=principal.subject,
        )
        await record(
            conn,
            principal,
            "access_request.created",
            f"access_request:{request_id}",
            org_id=app.org_id,
            app_id=app.id,
            details={"dataset": dataset, "scopes": scopes},
        )
        if ds["auto_approve"] and set(scopes) <= AUTO_APPROVABLE:
            row = await repo.get_request(conn, request_id, lock=True)
            assert row is not None
            await self._approve(work, principal, row, scopes, None, None, None, None, AUTO)
        row = await repo.get_request(conn, request_id)
        assert row is not None
        if row["grant_id"] is not None:
            work.after_commit(self._forget_grants)
        return request_out(row)

    async def _requesting_app(self, conn: Conn, principal: Principal, raw: str) -> apps_repo.App:
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
        if principal.app_id != app_id and not can_manage_org(principal, app.org_id):
            raise unknown
        if app.disabled:
            raise invalid(f"Application {raw!r} is disabled.", "/app", "disabled")
        return app

    async def _request(
        self, conn: Conn, principal: Principal, raw_id: str, *, lock: bool = False
    ) -> asyncpg.Record:
        hidden = NotFound(
            f"Access request {raw_id!r} does not exist or is not visible to you.", denial=True
        )
        request_id = parse_uuid(raw_id)
        if request_id is None:
            raise hidden
        row = await repo.get_request(conn, request_id, lock=lock)
        if row is None or not may_see(principal, row):
            raise hidden
        return row

    async def get_request(self, reads: Reads, principal: Principal, raw_id: str) -> dict[str, Any]:
        return request_out(await self._request(reads.conn, principal, raw_id))

    async def list_requests(
        self,
        reads: Reads,
        principal: Principal,
        *,
        status: str | None,
        dataset: str | None,
        app: str | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        app_id = filter_app(app)
        fp = fingerprint("access_requests", status, dataset, app)
        rows = await repo.list_requests(
            reads.conn,
            orgs=managed_orgs(principal),
            own_app=principal.app_id,
            status=status,
            dataset=dataset or None,
            app_id=app_id,
            after=page_position(cursor, fp),
            limit=limit + 1,
        )
        return page_of_rows(rows, limit, fp, request_out)

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
        self, work: UnitOfWork, principal: Principal, raw_id: str, body: AccessRequestApprove
    ) -> dict[str, Any]:
        expires_at = future_moment(body.expires_at)
        conn = work.conn
        row = await self._decidable(conn, principal, raw_id)
        requested = set(row["scopes"])
        scopes = sorted(set(body.scopes) if body.scopes is not None else requested)
        if not set(scopes) <= requested:
            raise invalid(
                "Approval can only narrow the requested scopes.",
                "/scopes",
                f"not requested: {sorted(set(scopes) - requested)}",
            )
        ds = await repo.dataset_for_grant(conn, row["dataset_id"])
        if ds is None:
            raise NotFound(f"Dataset {row['dataset']!r} no longer exists.")
        schema = RecordSchema.compile(jsonbody.loads_trusted(ds["schema"])).keyed_by(
            ds["primary_key"]
        )
        fields = (
            check_fields(body.fields, schema, ds["primary_key"])
            if body.fields is not None
            else None
        )
        row_filter = body.row_filter or None
        if row_filter is not None:
            check_row_filter(row_filter, schema)
        if (fields is not None or row_filter is not None) and "records:write" in scopes:
            raise invalid(
                "Narrowed grants are read-only: drop records:write or the narrowing.",
                "/scopes",
                "records:write cannot be granted with fields or row_filter",
            )
        await self._approve(
            work, principal, row, scopes, fields, row_filter, expires_at, body.note, None
        )
        updated = await repo.get_request(conn, row["id"])
        work.after_commit(self._forget_grants)
        assert updated is not None
        return request_out(updated)

    async def _approve(
        self,
        work: UnitOfWork,
        principal: Principal,
        row: asyncpg.Record,
        scopes: list[str],
        fields: list[str] | None,
        row_filter: dict[str, Any] | None,
        expires_at: datetime | None,
        note: str | None,
        actor: str | None,
    ) -> uuid.UUID:
        conn = work.conn
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
        work.announce("grants")
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
        self, work: UnitOfWork, principal: Principal, raw_id: str, body: AccessRequestReject
    ) -> dict[str, Any]:
        conn = work.conn
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
        self, conn: Conn, principal: Principal, raw_id: str, *, lock: bool = False
    ) -> asyncpg.Record:
        hidden = NotFound(f"Grant {raw_id!r} does not exist or is not visible to you.", denial=True)
        grant_id = parse_uuid(raw_id)
        if grant_id is None:
            raise hidden
        row = await repo.get_grant(conn, grant_id, lock=lock)
        if row is None or not may_see(principal, row):
            raise hidden
        return row

    async def get_grant(self, reads: Reads, principal: Principal, raw_id: str) -> dict[str, Any]:
        return grant_out(await self._grant(reads.conn, principal, raw_id), principal)

    async def list_grants(
        self,
        reads: Reads,
        principal: Principal,
        *,
        dataset: str | None,
        app: str | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        app_id = filter_app(app)
        fp = fingerprint("grants", dataset, app)
        rows = await repo.list_grants(
            reads.conn,
            orgs=managed_orgs(principal),
            own_app=principal.app_id,
            dataset=dataset or None,
            app_id=app_id,
            after=page_position(cursor, fp),
            limit=limit + 1,
        )
        return page_of_rows(rows, limit, fp, lambda row: grant_out(row, principal))

    async def revoke(self, work: UnitOfWork, principal: Principal, raw_id: str) -> None:
        conn = work.conn
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
        work.announce("grants")
        work.after_commit(self._forget_grants)
