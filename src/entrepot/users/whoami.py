"""``GET /v1/me``: who a credential is, whatever its kind.

Every request is judged as its principal; this shows that principal to its
holder: an admin key, an app's key or token (with its app and the grants in force),
or a user's token (with the person and their memberships). Nothing here is
secret to the holder: it is what the credential already lets them do.
"""

from __future__ import annotations

from typing import Any

from entrepot.access import repository as access_repo
from entrepot.access.shaping import grant_out
from entrepot.apps import repository as apps_repo
from entrepot.principal import Principal
from entrepot.problems import NotFound
from entrepot.store.work import Reads
from entrepot.users import repository as repo

_GONE = "No one stands behind this credential any more."


def _credential(principal: Principal) -> dict[str, str]:
    kind, _, ident = principal.credential.partition(":")
    return {"kind": "api_key" if kind == "key" else "access_token", "id": ident}


async def whoami(reads: Reads, principal: Principal) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": principal.kind,
        "credential": _credential(principal),
        "scopes": sorted(principal.scopes),
        "app": None,
        "user": None,
        "grants": [],
    }
    if principal.kind == "app" and principal.app_id is not None:
        app = await apps_repo.get_app(reads.conn, principal.app_id)
        if app is None:
            raise NotFound(_GONE)
        out["app"] = {"id": str(app.id), "name": app.name, "org": app.org}
        grants = await access_repo.live_grants_of(reads.conn, app.id)
        out["grants"] = [
            {k: shown[k] for k in ("id", "dataset", "scopes", "fields", "row_filter", "expires_at")}
            for shown in (grant_out(row, principal) for row in grants)
        ]
    elif principal.kind == "user" and principal.user_id is not None:
        user = await repo.get_user(reads.conn, principal.user_id)
        if user is None:
            raise NotFound(_GONE)
        roles = await repo.memberships(reads.conn, principal.user_id)
        out["user"] = {
            "id": str(user.id),
            "email": user.email,
            "is_platform_admin": user.is_platform_admin,
            "memberships": [{"org": r.org, "role": r.role} for r in roles],
        }
    return out
