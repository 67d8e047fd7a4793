"""Who a credential is, read from the store now: the one place a key's row or an
access token's subject becomes a :class:`~entrepot.principal.Principal` (for the bearer
check and for the stream tickets issued through either)."""

from __future__ import annotations

import uuid

import asyncpg

from entrepot.auth import repository as repo
from entrepot.principal import ALL_SCOPES, Principal, Role
from entrepot.problems import Unauthorized


def key_principal(row: repo.LiveKey) -> Principal:
    """Who a live API key is, as read now."""
    credential = f"key:{row.id}"
    if row.is_admin:
        return Principal("admin", credential, credential, ALL_SCOPES, is_admin=True)
    app_scopes = frozenset(row.app_scopes or ())
    scopes = frozenset(row.scopes) & app_scopes  # an empty list is no scope, not all
    return Principal(
        "app",
        f"app:{row.app_id}",
        credential,
        scopes,
        app_id=row.app_id,
        org_id=row.org_id,
        plan=row.plan,
    )


async def subject_principal(
    pool: asyncpg.Pool,
    subject: str,
    granted: frozenset[str],
    credential: str,
    expires_at: int | None,
) -> Principal:
    """Who an access token's subject (``app:<id>`` or ``user:<id>``) is, as read now:
    the app still enabled, the user still enabled, their roles as they are."""
    kind, _, raw_id = subject.partition(":")
    try:
        subject_id = uuid.UUID(raw_id)
    except ValueError:
        raise Unauthorized(
            "The access token names no known subject.", reason="invalid_token"
        ) from None
    if kind == "app":
        app = await repo.find_app(pool, subject_id)
        if app is None:
            raise Unauthorized(
                "The application is disabled or deleted.",
                reason="app_disabled",
                credential=credential,
            )
        return Principal(
            "app",
            f"app:{subject_id}",
            credential,
            granted & frozenset(app.scopes),
            app_id=subject_id,
            org_id=app.org_id,
            plan=app.plan,
            expires_at=expires_at,
        )
    if kind == "user":
        user = await repo.find_user(pool, subject_id)
        if user is None:
            raise Unauthorized(
                "The user is disabled or deleted.", reason="user_disabled", credential=credential
            )
        roles: dict[uuid.UUID, Role] = {
            r.org_id: r.role for r in await repo.user_roles(pool, subject_id)
        }
        admin = bool(user.is_platform_admin)
        scopes = granted if not admin else granted | {"admin"}
        return Principal(
            "user",
            f"user:{subject_id}",
            credential,
            scopes,
            is_admin=admin,
            user_id=subject_id,
            roles=roles,
            expires_at=expires_at,
        )
    raise Unauthorized("The access token names no known subject.", reason="invalid_token")
