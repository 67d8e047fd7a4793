"""The portal's sessions: opened at sign-in, read on every page, ended at sign-out.

The browser holds a 256-bit random token; the store holds its SHA-256 digest, so
the table signs no one in. Each sign-in makes a new token (a token planted in a
browser before sign-in is never the one that signs in: no session fixation).
"""

from __future__ import annotations

import hashlib
import secrets

from entrepot.auditing.log import record
from entrepot.portal import repository as repo
from entrepot.portal.repository import OrgRole, Session
from entrepot.principal import Principal
from entrepot.problems import Unprocessable
from entrepot.store.work import Reads, UnitOfWork
from entrepot.users import repository as users_repo
from entrepot.users.repository import User

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


async def open_session(work: UnitOfWork, user: User, seconds: int) -> str:
    """A new session for ``user``, in its first organisation; its token (for the cookie)."""
    conn = work.conn
    await repo.delete_expired_of(conn, user.id)
    orgs = await repo.orgs_of(conn, user.id)
    token = new_token()
    session = await repo.insert_session(
        conn, token_digest(token), user.id, orgs[0].id if orgs else None, seconds
    )
    actor = f"user:{user.id}"
    await record(
        conn,
        None,
        "portal.signed_in",
        actor,
        actor=actor,
        details={"session": str(session.id)},
    )
    return token


async def find_session(reads: Reads, token: str) -> Session | None:
    return await repo.find_session(reads.conn, token_digest(token))


async def close_session(work: UnitOfWork, principal: Principal, session: Session) -> None:
    await repo.delete_session(work.conn, session.id)
    await record(
        work.conn,
        principal,
        "portal.signed_out",
        principal.subject,
        details={"session": str(session.id)},
    )


async def end_other_sessions(work: UnitOfWork, principal: Principal, session: Session) -> int:
    """After a password change: every other browser signed in as this person is out."""
    ended = await repo.delete_sessions_of(work.conn, session.user_id, keep=session.id)
    if ended:
        await record(
            work.conn,
            principal,
            "portal.sessions_ended",
            principal.subject,
            details={"count": ended, "reason": "password_changed"},
        )
    return ended


async def switch_org(
    work: UnitOfWork, principal: Principal, session: Session, org_name: str
) -> None:
    """Work in another of one's organisations (an org one is not in is refused as unknown)."""
    org = await users_repo.get_org(work.conn, org_name)
    if org is None or principal.role_in(org.id) is None:
        raise Unprocessable(
            f"You are not a member of an organisation named {org_name!r}.",
            errors=[{"path": "/org", "message": "not one of your organisations"}],
        )
    await repo.set_session_org(work.conn, session.id, org.id)


def current_org(session: Session, orgs: list[OrgRole]) -> OrgRole | None:
    """The organisation the session works in: the one it chose, else the first."""
    for org in orgs:
        if org.id == session.org_id:
            return org
    return orgs[0] if orgs else None
