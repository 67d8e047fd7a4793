"""User, login and membership use cases.

Every change is audited in its own transaction; membership changes and user
disabling are announced to every replica (``credentials``) so cached
principals, which carry the user's roles, are dropped the moment they commit.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from entrepot.auditing.log import record
from entrepot.auth.tokens import TokenService
from entrepot.limits.sign_in import NoThrottle, SignInThrottle
from entrepot.orgs import repository as orgs_repo
from entrepot.pagination import decode_cursor, fingerprint, invalid_cursor, page
from entrepot.principal import (
    SCOPES,
    Principal,
    can_manage_org,
    can_see_org,
    require_platform_admin,
)
from entrepot.problems import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
)
from entrepot.store.types import Conn
from entrepot.store.work import Reads, UnitOfWork, Units
from entrepot.users import repository as repo
from entrepot.users.models import MemberAdd, UserCreate, UserPatch
from entrepot.users.passwords import Passwords, passwords
from entrepot.users.repository import Member, OrgRef, User
from entrepot.uuids import uuid_or_404

USER_SCOPES = tuple(s for s in SCOPES if s != "admin")
LOGIN_FAILED = "The email or password is incorrect, or the account is disabled."
FIRST_RUN_LOCK_KEY = 0x6669_7273_7472_756E  # "firstrun"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def user_out(row: User) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "email": row.email,
        "is_platform_admin": row.is_platform_admin,
        "disabled": row.disabled,
        "created_at": row.created_at,
    }


def member_out(row: Member) -> dict[str, Any]:
    return {
        "org": row.org,
        "user_id": str(row.user_id),
        "email": row.email,
        "role": row.role,
        "created_at": row.created_at,
    }


class UserService:
    def __init__(
        self,
        tokens: TokenService,
        *,
        forget_principals: Callable[[], None] | None = None,
        hasher: Passwords = passwords,
        sign_in_throttle: SignInThrottle | NoThrottle | None = None,
    ) -> None:
        self.sign_in_throttle = sign_in_throttle or NoThrottle()
        self.tokens = tokens
        self.hasher = hasher
        # This replica hears its own NOTIFY a moment after commit; dropping its cache
        # directly makes the change visible to the very next request it serves.
        self.forget_principals = forget_principals or (lambda: None)
        # Argon2 takes ~64 MiB and a core per call: bound how many run at once.
        self._hashing = asyncio.Semaphore(max(2, os.cpu_count() or 2))

    async def _hash(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(self.hasher.hash, password)

    async def _verify(self, stored: str | None, password: str) -> bool:
        async with self._hashing:
            return await asyncio.to_thread(self.hasher.verify, stored, password)

    # --- users --------------------------------------------------------------

    async def create_user(
        self, reads: Reads, principal: Principal, body: UserCreate
    ) -> dict[str, Any]:
        """Hash the password first, outside any transaction (Argon2 is slow), then
        insert in a short transaction on the request's connection."""
        require_platform_admin(principal)
        email = normalise_email(body.email)
        password_hash = await self._hash(body.password)
        async with reads.begin() as work:
            conn = work.conn
            try:
                row = await repo.insert_user(
                    conn, email, password_hash, is_platform_admin=body.is_platform_admin
                )
            except asyncpg.UniqueViolationError:
                raise Conflict(f"A user with email {email!r} already exists.") from None
            await record(
                conn,
                principal,
                "user.created",
                f"user:{row.id}",
                details={"email": email, "is_platform_admin": body.is_platform_admin},
            )
        return user_out(row)

    async def update_user(
        self, work: UnitOfWork, principal: Principal, raw_id: str, patch: UserPatch
    ) -> dict[str, Any]:
        require_platform_admin(principal)
        user_id = uuid_or_404(raw_id, "User")
        conn = work.conn
        row = await repo.get_user(conn, user_id, lock=True)
        if row is None:
            raise NotFound(f"User {raw_id!r} does not exist.")
        if patch.disabled is not None and patch.disabled != row.disabled:
            await repo.set_disabled(conn, user_id, patch.disabled)
            work.announce("credentials")
            action = "user.disabled" if patch.disabled else "user.enabled"
            await record(conn, principal, action, f"user:{user_id}")
        updated = await repo.get_user(conn, user_id)
        work.after_commit(self.forget_principals)
        assert updated is not None
        return user_out(updated)

    async def list_users(
        self, reads: Reads, principal: Principal, *, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        """Every person on the platform, by email (platform admins only: the console)."""
        require_platform_admin(principal)
        fp = fingerprint("users")
        after = decode_cursor(cursor, fp)[0] if cursor else None
        rows = await repo.list_users(
            reads.conn, after=after if isinstance(after, str) else None, limit=limit + 1
        )
        return page([user_out(r) for r in rows], limit, fp, lambda item: [item["email"]])

    async def me(self, reads: Reads, principal: Principal) -> dict[str, Any]:
        if principal.kind != "user" or principal.user_id is None:
            raise NotFound(
                "No user stands behind this credential: /v1/users/me needs a user token."
            )
        row = await repo.get_user(reads.conn, principal.user_id)
        if row is None:
            raise NotFound("No user stands behind this credential.")
        roles = await repo.memberships(reads.conn, principal.user_id)
        return {
            "id": str(row.id),
            "email": row.email,
            "is_platform_admin": row.is_platform_admin,
            "memberships": [{"org": r.org, "role": r.role} for r in roles],
        }

    # --- login --------------------------------------------------------------

    async def login(self, units: Units, email: str, password: str) -> dict[str, Any]:
        """Exchange email and password for a user access token (see :meth:`_authenticated`)."""
        row, rehashed = await self._authenticated(units, email, password)
        user_id: uuid.UUID = row.id
        scopes = USER_SCOPES + (("admin",) if row.is_platform_admin else ())
        async with units.work() as work:
            if rehashed is not None:
                await repo.set_password_hash(work.conn, user_id, rehashed)
            issued = await self.tokens.issue(
                subject=f"user:{user_id}", scopes=scopes, conn=work.conn
            )
            await record(
                work.conn,
                None,
                "credential.issued",
                f"user:{user_id}",
                actor=f"user:{user_id}",
                details={"kind": "user_token", "jti": issued.jti, "scope": issued.scope},
            )
        return {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }

    async def sign_in(self, units: Units, email: str, password: str) -> User:
        """The user behind an email and password, for a session of the portal's: the
        same checks, throttle and audit rows as :meth:`login`, without a token."""
        row, rehashed = await self._authenticated(units, email, password)
        if rehashed is not None:
            async with units.work() as work:
                await repo.set_password_hash(work.conn, row.id, rehashed)
        return row

    async def _authenticated(
        self, units: Units, email: str, password: str
    ) -> tuple[User, str | None]:
        """The enabled user whose password this is, and a new hash when the stored one
        was made with weaker parameters.

        Unknown email, wrong password and disabled account are one answer, and
        cost one Argon2 verification each, so neither the body nor the timing
        says which emails exist. The verification holds no connection (logins
        cannot hold the pool while they hash): the lookup and a denial's audit row
        each run on a short unit of their own.
        """
        email = normalise_email(email)
        await self.sign_in_throttle.check(email)
        async with units.reads() as reads:
            row = await repo.find_user_by_email(reads.conn, email)
        ok = await self._verify(row.password_hash if row else None, password)
        if row is None or not ok or row.disabled:
            await self.sign_in_throttle.failed(email)
            reason = (
                "unknown_email"
                if row is None
                else ("wrong_password" if not ok else "user_disabled")
            )
            async with units.reads() as reads:
                await record(
                    reads.conn,
                    None,
                    "auth.login",
                    f"user:{row.id}" if row else None,
                    outcome="denied",
                    status=401,
                    details={"email": email, "reason": reason},
                )
            problem = Unauthorized(LOGIN_FAILED, error="invalid_request", reason=reason)
            problem.denial = False  # audited above, with what was attempted
            raise problem
        stored = row.password_hash
        assert stored is not None  # verified above: an absent hash never matches
        rehashed = await self._hash(password) if self.hasher.needs_rehash(stored) else None
        return row, rehashed

    async def change_password(
        self, units: Units, principal: Principal, current: str, new: str
    ) -> None:
        """A person changes their own password, proving the current one first (a
        session left open is not enough). Hashing holds no connection."""
        if principal.kind != "user" or principal.user_id is None:
            raise NotFound("No user stands behind this credential.")
        async with units.reads() as reads:
            row = await repo.get_user(reads.conn, principal.user_id)
        if row is None:
            raise NotFound("No user stands behind this credential.")
        await self.sign_in_throttle.check(row.email)
        if not await self._verify(row.password_hash, current):
            await self.sign_in_throttle.failed(row.email)
            raise Unprocessable(
                "The current password is incorrect.",
                errors=[{"path": "/current_password", "message": "incorrect"}],
            )
        password_hash = await self._hash(new)
        async with units.work() as work:
            await repo.set_password_hash(work.conn, row.id, password_hash)
            await record(work.conn, principal, "user.password_changed", f"user:{row.id}")

    async def first_run(
        self, units: Units, body: UserCreate, org_name: str, org_title: str
    ) -> User:
        """The platform's first person, a platform admin owning its first organisation,
        created from the browser instead of with the bootstrap key. Only while no user
        exists: concurrent set-ups wait on one lock and all but the first are refused."""
        email = normalise_email(body.email)
        password_hash = await self._hash(body.password)
        async with units.work() as work:
            conn = work.conn
            await conn.execute("SELECT pg_advisory_xact_lock($1)", FIRST_RUN_LOCK_KEY)
            if await repo.any_user(conn):
                raise Conflict("The platform is already set up: sign in instead.")
            user = await repo.insert_user(conn, email, password_hash, is_platform_admin=True)
            try:
                org = await orgs_repo.insert_org(conn, org_name, org_title)
            except asyncpg.UniqueViolationError:
                raise Conflict(f"An organisation named {org_name!r} already exists.") from None
            await repo.upsert_member(conn, org.id, user.id, "owner")
            actor = f"user:{user.id}"
            await record(
                conn,
                None,
                "platform.first_run",
                actor,
                actor=actor,
                org_id=org.id,
                details={"email": email, "org": org_name},
            )
        return user

    # --- members ------------------------------------------------------------

    async def _org(
        self, conn: Conn, principal: Principal, name: str, *, lock: bool = False
    ) -> OrgRef:
        row = await repo.get_org(conn, name, lock=lock)
        if row is None or not can_see_org(principal, row.id):
            raise NotFound(
                f"Organisation {name!r} does not exist or is not visible to you.", denial=True
            )
        return row

    @staticmethod
    def _require_manager(principal: Principal, org_id: uuid.UUID) -> None:
        if not can_manage_org(principal, org_id):
            raise Forbidden(
                "Managing members needs an owner or admin of the organisation.", denial=True
            )

    @staticmethod
    def _require_owner(principal: Principal, org_id: uuid.UUID) -> None:
        if principal.role_in(org_id) != "owner":
            raise Forbidden(
                "Only an owner may grant, change or remove the owner role.", denial=True
            )

    async def add_member(
        self, work: UnitOfWork, principal: Principal, org_name: str, body: MemberAdd
    ) -> tuple[dict[str, Any], bool]:
        """Add a member or change its role; True when the membership is new."""
        email = normalise_email(body.email)
        conn = work.conn
        org = await self._org(conn, principal, org_name, lock=True)
        self._require_manager(principal, org.id)
        user = await repo.find_user_by_email(conn, email)
        if user is None:
            raise Unprocessable(
                f"No user has the email {email!r}; a platform admin creates users first.",
                errors=[{"path": "/email", "message": "unknown user"}],
            )
        current = await repo.get_member(conn, org.id, user.id)
        previous = current.role if current else None
        if body.role == "owner" or previous == "owner":
            self._require_owner(principal, org.id)
        if (
            previous == "owner"
            and body.role != "owner"
            and await repo.count_owners(conn, org.id) <= 1
        ):
            raise Conflict("An organisation keeps at least one owner; add another first.")
        if previous != body.role:
            await repo.upsert_member(conn, org.id, user.id, body.role)
            work.announce("credentials")
            await record(
                conn,
                principal,
                "member.added" if previous is None else "member.role_changed",
                f"user:{user.id}",
                org_id=org.id,
                details={"role": body.role, "previous_role": previous, "email": email},
            )
        row = await repo.get_member(conn, org.id, user.id)
        work.after_commit(self.forget_principals)
        assert row is not None
        return member_out(row), previous is None

    async def list_members(
        self, reads: Reads, principal: Principal, org_name: str, *, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        org = await self._org(reads.conn, principal, org_name)
        if principal.kind == "app" and not can_manage_org(principal, org.id):
            raise Forbidden(
                "Listing people needs an admin of the organisation or one of its members.",
                denial=True,
            )
        fp = fingerprint("members", str(org.id))
        after: uuid.UUID | None = None
        if cursor:
            position = decode_cursor(cursor, fp)
            try:
                after = uuid.UUID(str(position[0]))
            except (ValueError, IndexError):
                raise invalid_cursor() from None
        rows = await repo.list_members(reads.conn, org.id, after=after, limit=limit + 1)
        return page([member_out(r) for r in rows], limit, fp, lambda item: [item["user_id"]])

    async def remove_member(
        self, work: UnitOfWork, principal: Principal, org_name: str, raw_user: str
    ) -> None:
        conn = work.conn
        org = await self._org(conn, principal, org_name, lock=True)
        self._require_manager(principal, org.id)
        user_id = uuid_or_404(raw_user, "User")
        current = await repo.get_member(conn, org.id, user_id)
        if current is None:
            raise NotFound(f"User {raw_user!r} is not a member of {org_name!r}.")
        if current.role == "owner":
            self._require_owner(principal, org.id)
            if await repo.count_owners(conn, org.id) <= 1:
                raise Conflict("The last owner cannot be removed; add another owner first.")
        await repo.delete_member(conn, org.id, user_id)
        await record(
            conn,
            principal,
            "member.removed",
            f"user:{user_id}",
            org_id=org.id,
            details={"role": current.role, "email": current.email},
        )
        work.announce("credentials")
        work.after_commit(self.forget_principals)
