"""Application and API-key use cases. Every credential event is audited in the
transaction that causes it, and every revocation is announced to all replicas."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from entrepot.apps import repository as repo
from entrepot.apps.models import AppCreate, AppPatch, KeyCreate, KeyRotate
from entrepot.apps.repository import ApiKey, App
from entrepot.auditing.log import record
from entrepot.auth.keys import new_key
from entrepot.auth.repository import insert_key
from entrepot.limits import repository as limits_repo
from entrepot.orgs import repository as orgs_repo
from entrepot.pagination import decode_cursor, fingerprint, page
from entrepot.principal import (
    DEFAULT_APP_SCOPES,
    Principal,
    can_manage_org,
    can_see_org,
    require_platform_admin,
)
from entrepot.problems import Conflict, Forbidden, NotFound, Unprocessable, refuse_nulls
from entrepot.store.types import Conn
from entrepot.store.work import Reads, UnitOfWork
from entrepot.uuids import uuid_or_404


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def new_client_credentials() -> tuple[str, str]:
    return "app_" + secrets.token_urlsafe(12), "secret_" + secrets.token_urlsafe(32)


def app_out(row: App) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "org": row.org,
        "name": row.name,
        "description": row.description,
        "client_id": row.client_id,
        "redirect_uris": list(row.redirect_uris),
        "scopes": list(row.scopes),
        "plan": row.plan,
        "disabled": row.disabled,
        "created_at": row.created_at,
    }


def key_out(row: ApiKey) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "prefix": row.prefix,
        "scopes": list(row.scopes),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "last_used_at": row.last_used_at,
        "revoked_at": row.revoked_at,
    }


def _future(moment: datetime | None, path: str) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise Unprocessable(
            "The time must be in the future.", errors=[{"path": path, "message": "in the past"}]
        )
    return moment


async def _check_plan_change(conn: Any, principal: Principal, plan: str) -> None:
    """Plans are commercial terms: only platform admins move apps between them."""
    require_platform_admin(principal)
    if await limits_repo.get_plan(conn, plan) is None:
        raise Unprocessable(
            f"Plan {plan!r} does not exist.",
            errors=[{"path": "/plan", "message": "unknown plan"}],
        )


class AppService:
    def __init__(
        self,
        *,
        max_overlap_seconds: int,
        forget_principals: Callable[[], None] | None = None,
    ) -> None:
        self.max_overlap_seconds = max_overlap_seconds
        # This replica's credential cache, dropped at once after a revocation commits
        # (other replicas drop theirs when the announcement arrives).
        self.forget_principals = forget_principals or (lambda: None)

    async def _app(
        self, conn: Any, principal: Principal, raw_id: str, *, manage: bool, lock: bool = False
    ) -> App:
        app_id = uuid_or_404(raw_id, "Application")
        row = await repo.get_app(conn, app_id, lock=lock)
        hidden = NotFound(
            f"Application {raw_id!r} does not exist or is not visible to you.", denial=True
        )
        if row is None:
            raise hidden
        manager = can_manage_org(principal, row.org_id)
        if not manager and principal.app_id != app_id:
            raise hidden
        if manage and not manager:
            raise Forbidden(
                "Managing an application needs an admin of its organisation.", denial=True
            )
        return row

    async def create(
        self, work: UnitOfWork, principal: Principal, body: AppCreate
    ) -> dict[str, Any]:
        scopes = sorted(set(body.scopes if body.scopes is not None else DEFAULT_APP_SCOPES))
        client_id, client_secret = new_client_credentials()
        conn = work.conn
        org = await orgs_repo.get_org(conn, body.org)
        if org is None or not can_see_org(principal, org.id):
            raise Unprocessable(
                f"Organisation {body.org!r} does not exist or you do not administer it.",
                errors=[{"path": "/org", "message": "unknown organisation"}],
                denial=True,
            )
        if not can_manage_org(principal, org.id):
            raise Forbidden(
                "Registering an application needs an admin of its organisation.", denial=True
            )
        try:
            app_id = await repo.insert_app(
                conn,
                {
                    "org_id": org.id,
                    "name": body.name,
                    "description": body.description,
                    "client_id": client_id,
                    "client_secret_digest": secret_digest(client_secret),
                    "redirect_uris": body.redirect_uris,
                    "scopes": scopes,
                },
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                f"{body.org!r} already has an application named {body.name!r}."
            ) from None
        await record(
            conn,
            principal,
            "app.created",
            f"app:{app_id}",
            org_id=org.id,
            details={"scopes": scopes},
        )
        await record(
            conn,
            principal,
            "credential.issued",
            f"app:{app_id}",
            org_id=org.id,
            details={"kind": "client_secret", "client_id": client_id},
        )
        row = await repo.get_app(conn, app_id)
        assert row is not None
        return {**app_out(row), "client_secret": client_secret}

    async def get(self, reads: Reads, principal: Principal, raw_id: str) -> dict[str, Any]:
        return app_out(await self._app(reads.conn, principal, raw_id, manage=False))

    async def list_apps(
        self, reads: Reads, principal: Principal, *, org: str | None, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        fp = fingerprint("apps", org)
        after = decode_cursor(cursor, fp)[0] if cursor else None
        orgs = (
            None
            if principal.is_admin
            else [o for o in principal.org_ids() if can_manage_org(principal, o)]
        )
        rows = await repo.list_apps(
            reads.conn,
            orgs=orgs,
            own_app=principal.app_id,
            org_name=org,
            after=after if isinstance(after, str) else None,
            limit=limit + 1,
        )
        return page([app_out(r) for r in rows], limit, fp, lambda item: [item["id"]])

    async def update(
        self, work: UnitOfWork, principal: Principal, raw_id: str, patch: AppPatch
    ) -> dict[str, Any]:
        changes = patch.model_dump(exclude_unset=True)
        refuse_nulls(changes, ("redirect_uris", "scopes", "disabled", "plan"))
        if "scopes" in changes:
            changes["scopes"] = sorted(set(changes["scopes"]))
        conn = work.conn
        row = await self._app(conn, principal, raw_id, manage=True, lock=True)
        if "plan" in changes:
            await _check_plan_change(conn, principal, changes["plan"])
        if changes:
            await repo.update_app(conn, row.id, changes)
            work.announce("credentials")
        if changes.get("disabled") is True and not row.disabled:
            await record(conn, principal, "app.disabled", f"app:{row.id}", org_id=row.org_id)
        await record(
            conn,
            principal,
            "app.updated",
            f"app:{row.id}",
            org_id=row.org_id,
            details={k: v for k, v in changes.items()},
        )
        updated = await repo.get_app(conn, row.id)
        work.after_commit(self.forget_principals)
        assert updated is not None
        return app_out(updated)

    async def delete(self, work: UnitOfWork, principal: Principal, raw_id: str) -> None:
        conn = work.conn
        row = await self._app(conn, principal, raw_id, manage=True, lock=True)
        await repo.delete_app(conn, row.id)
        await record(conn, principal, "app.deleted", f"app:{row.id}", org_id=row.org_id)
        work.announce("credentials")
        work.after_commit(self.forget_principals)

    async def rotate_secret(
        self, work: UnitOfWork, principal: Principal, raw_id: str
    ) -> dict[str, Any]:
        _, client_secret = new_client_credentials()
        conn = work.conn
        row = await self._app(conn, principal, raw_id, manage=True, lock=True)
        await repo.update_app(conn, row.id, {"client_secret_digest": secret_digest(client_secret)})
        await record(
            conn,
            principal,
            "credential.rotated",
            f"app:{row.id}",
            org_id=row.org_id,
            details={"kind": "client_secret"},
        )
        return {"client_id": row.client_id, "client_secret": client_secret}

    # --- API keys -------------------------------------------------------

    def _key_scopes(self, app: App, requested: list[str] | None) -> list[str]:
        app_scopes = set(app.scopes)
        scopes = set(requested) if requested is not None else app_scopes
        extra = scopes - app_scopes
        if extra:
            raise Unprocessable(
                "A key can only carry scopes its application holds.",
                errors=[{"path": "/scopes", "message": f"not held by the app: {sorted(extra)}"}],
            )
        return sorted(scopes)

    async def _issue_key(
        self,
        conn: Conn,
        principal: Principal,
        app: App,
        name: str,
        scopes: list[str],
        expires_at: datetime | None,
    ) -> dict[str, Any]:
        key = new_key()
        key_id = await insert_key(conn, key, name=name, app_id=app.id, scopes=scopes)
        if expires_at is not None:
            await repo.expire_key(conn, key_id, expires_at)
        await record(
            conn,
            principal,
            "credential.issued",
            f"key:{key_id}",
            org_id=app.org_id,
            app_id=app.id,
            details={"kind": "api_key", "prefix": key.prefix, "scopes": scopes},
        )
        row = await repo.get_key(conn, app.id, key_id)
        assert row is not None
        return {**key_out(row), "key": key.secret}

    async def create_key(
        self, work: UnitOfWork, principal: Principal, raw_id: str, body: KeyCreate
    ) -> dict[str, Any]:
        expires_at = _future(body.expires_at, "/expires_at")
        conn = work.conn
        app = await self._app(conn, principal, raw_id, manage=True)
        scopes = self._key_scopes(app, body.scopes)
        return await self._issue_key(conn, principal, app, body.name, scopes, expires_at)

    async def list_keys(
        self, reads: Reads, principal: Principal, raw_id: str, *, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        app = await self._app(reads.conn, principal, raw_id, manage=True)
        fp = fingerprint("keys", str(app.id))
        after = decode_cursor(cursor, fp)[0] if cursor else None
        rows = await repo.list_keys(
            reads.conn, app.id, after=after if isinstance(after, str) else None, limit=limit + 1
        )
        return page([key_out(r) for r in rows], limit, fp, lambda item: [item["id"]])

    async def _key(self, conn: Any, app: App, raw_key: str) -> ApiKey:
        key = await repo.get_key(conn, app.id, uuid_or_404(raw_key, "Key"))
        if key is None:
            raise NotFound(f"Key {raw_key!r} does not exist.")
        return key

    async def revoke_key(
        self, work: UnitOfWork, principal: Principal, raw_id: str, raw_key: str
    ) -> None:
        conn = work.conn
        app = await self._app(conn, principal, raw_id, manage=True)
        key = await self._key(conn, app, raw_key)
        await repo.revoke_key(conn, key.id)
        await record(
            conn,
            principal,
            "credential.revoked",
            f"key:{key.id}",
            org_id=app.org_id,
            app_id=app.id,
            details={"prefix": key.prefix},
        )
        work.announce("credentials")
        work.after_commit(self.forget_principals)

    async def rotate_key(
        self, work: UnitOfWork, principal: Principal, raw_id: str, raw_key: str, body: KeyRotate
    ) -> dict[str, Any]:
        if body.overlap_seconds > self.max_overlap_seconds:
            raise Unprocessable(
                f"overlap_seconds is at most {self.max_overlap_seconds}.",
                errors=[{"path": "/overlap_seconds", "message": "too long"}],
            )
        old_until = datetime.now(UTC) + timedelta(seconds=body.overlap_seconds)
        conn = work.conn
        app = await self._app(conn, principal, raw_id, manage=True)
        old = await self._key(conn, app, raw_key)
        if old.revoked_at is not None:
            raise Conflict("A revoked key cannot be rotated; issue a new one.")
        scopes = [s for s in old.scopes if s in set(app.scopes)]
        created = await self._issue_key(conn, principal, app, old.name, scopes, old.expires_at)
        await repo.set_rotated_from(conn, uuid.UUID(created["id"]), old.id, old.expires_at)
        await repo.expire_key(conn, old.id, old_until)
        await record(
            conn,
            principal,
            "credential.rotated",
            f"key:{old.id}",
            org_id=app.org_id,
            app_id=app.id,
            details={"new_key": created["id"], "old_key_expires_at": old_until},
        )
        work.announce("credentials")
        work.after_commit(self.forget_principals)
        return {**created, "replaces": str(old.id), "old_key_expires_at": old_until}
