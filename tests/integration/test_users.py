"""Users as principals: accounts, password login, memberships and what roles allow."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher

from tests.factories import app_key, make_dataset, make_org, unique

PASSWORD = "correct horse battery staple"
RECORD = {"sku": "a-1", "name": "Anvil", "price": 12.5}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def email() -> str:
    return f"{unique('user')}@example.test"


async def make_user(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"email": email(), "password": PASSWORD, **overrides}
    response = await client.post("/v1/users", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(anon: httpx.AsyncClient, address: str, password: str = PASSWORD) -> str:
    response = await anon.post("/v1/auth/token", json={"email": address, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def user_in(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, org: str, role: str
) -> tuple[dict[str, Any], str]:
    """A fresh user holding ``role`` in ``org`` (added by the platform admin), and its token."""
    user = await make_user(client)
    added = await client.post(
        f"/v1/orgs/{org}/members", json={"email": user["email"], "role": role}
    )
    assert added.status_code == 201, added.text
    return user, await login(anon, user["email"])


async def audit_rows(database_url: str, action: str, target: str | None) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(
            "SELECT actor, org_id, action, target, outcome, status, details::text AS details "
            "FROM audit_log WHERE action = $1 AND target IS NOT DISTINCT FROM $2 ORDER BY id",
            action,
            target,
        )
    finally:
        await conn.close()


# --- accounts ----------------------------------------------------------------------


async def test_only_platform_admins_create_users(client: httpx.AsyncClient) -> None:
    org = (await make_org(client))["name"]
    org_admin_key = await app_key(client, org, ["datasets:read", "admin"])
    refused = await client.post(
        "/v1/users",
        json={"email": email(), "password": PASSWORD},
        headers=bearer(org_admin_key),
    )
    assert refused.status_code == 403

    created = await client.post(
        "/v1/users", json={"email": "  New.Person@Example.TEST ", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["email"] == "new.person@example.test"
    assert set(body) >= {"id", "email", "created_at"}
    assert body["is_platform_admin"] is False
    assert not any("password" in key for key in body)


@pytest.mark.parametrize(
    ("password", "status"),
    [
        ("x" * 11, 422),
        ("x" * 12, 201),
        ("x" * 1024, 201),
        ("x" * 1025, 422),
        (None, 422),
    ],
)
async def test_password_length_rules(
    client: httpx.AsyncClient, password: str | None, status: int
) -> None:
    payload: dict[str, Any] = {"email": email()}
    if password is not None:
        payload["password"] = password
    response = await client.post("/v1/users", json=payload)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["errors"][0]["path"] == "/password"


@pytest.mark.parametrize("bad", ["", "no-at-sign", "two@@example.test", "a@b", "sp ace@x.test"])
async def test_malformed_emails_are_refused(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.post("/v1/users", json={"email": bad, "password": PASSWORD})
    assert response.status_code == 422


async def test_emails_are_unique_whatever_their_case(client: httpx.AsyncClient) -> None:
    address = email()
    await make_user(client, email=address)
    again = await client.post("/v1/users", json={"email": address.upper(), "password": PASSWORD})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


# --- login ---------------------------------------------------------------------------


async def test_login_issues_a_bearer_token_that_names_the_user(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    user = await make_user(client)
    response = await anon.post(
        "/v1/auth/token", json={"email": user["email"].upper(), "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] > 0
    scopes = set(token["scope"].split())
    assert scopes == {
        "datasets:read",
        "records:read",
        "records:write",
        "changes:read",
        "webhooks:manage",
    }

    me = await anon.get("/v1/users/me", headers=bearer(token["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "id": user["id"],
        "email": user["email"],
        "is_platform_admin": False,
        "memberships": [],
    }


async def test_platform_admin_users_get_the_admin_scope_and_its_powers(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    admin = await make_user(client, is_platform_admin=True)
    token = await login(anon, admin["email"])
    me = await anon.get("/v1/users/me", headers=bearer(token))
    assert me.json()["is_platform_admin"] is True
    created = await anon.post(
        "/v1/users", json={"email": email(), "password": PASSWORD}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text


async def test_me_is_only_for_user_tokens(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/users/me")).status_code == 404  # the bootstrap admin key
    org = (await make_org(client))["name"]
    key = await app_key(client, org, ["datasets:read"])
    assert (await client.get("/v1/users/me", headers=bearer(key))).status_code == 404


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, database_url: str
) -> None:
    user = await make_user(client)
    wrong = await anon.post(
        "/v1/auth/token", json={"email": user["email"], "password": PASSWORD + "!"}
    )
    unknown = await anon.post("/v1/auth/token", json={"email": email(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    assert wrong.headers["www-authenticate"].startswith("Bearer")

    def without_request_id(response: httpx.Response) -> dict[str, Any]:
        body: dict[str, Any] = response.json()
        body.pop("request_id", None)
        return body

    assert without_request_id(wrong) == without_request_id(unknown)

    # Both are audited as denied, and the password never reaches the log.
    denied = await audit_rows(database_url, "auth.login", f"user:{user['id']}")
    assert [(r["outcome"], r["status"]) for r in denied] == [("denied", 401)]
    assert PASSWORD not in denied[0]["details"]
    assert "wrong_password" in denied[0]["details"]


async def test_successful_logins_are_audited_as_issued_credentials(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, database_url: str
) -> None:
    user = await make_user(client)
    await login(anon, user["email"])
    issued = await audit_rows(database_url, "credential.issued", f"user:{user['id']}")
    assert len(issued) == 1
    assert issued[0]["actor"] == f"user:{user['id']}"
    assert '"user_token"' in issued[0]["details"]
    assert PASSWORD not in issued[0]["details"]


async def test_disabled_users_can_neither_log_in_nor_use_their_tokens(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    user = await make_user(client)
    token = await login(anon, user["email"])

    not_admin = await anon.patch(
        f"/v1/users/{user['id']}", json={"disabled": True}, headers=bearer(token)
    )
    assert not_admin.status_code == 403

    disabled = await client.patch(f"/v1/users/{user['id']}", json={"disabled": True})
    assert disabled.status_code == 200
    assert disabled.json()["disabled"] is True
    assert (await anon.get("/v1/users/me", headers=bearer(token))).status_code == 401
    refused = await anon.post("/v1/auth/token", json={"email": user["email"], "password": PASSWORD})
    unknown = await anon.post("/v1/auth/token", json={"email": email(), "password": PASSWORD})
    assert refused.status_code == 401
    assert refused.json()["detail"] == unknown.json()["detail"]

    await client.patch(f"/v1/users/{user['id']}", json={"disabled": False})
    assert (await anon.get("/v1/users/me", headers=bearer(token))).status_code == 200


# --- members -----------------------------------------------------------------------


async def test_members_are_added_listed_updated_and_removed_by_role(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, database_url: str
) -> None:
    org = (await make_org(client))["name"]
    owner, owner_token = await user_in(client, anon, org, "owner")
    admin, admin_token = await user_in(client, anon, org, "admin")
    person = await make_user(client)
    other = await make_user(client)

    # An admin adds a member; adding an existing member again updates its role.
    added = await anon.post(
        f"/v1/orgs/{org}/members",
        json={"email": person["email"].upper(), "role": "member"},
        headers=bearer(admin_token),
    )
    assert added.status_code == 201, added.text
    assert added.json()["user_id"] == person["id"]
    assert added.json()["role"] == "member"
    promoted = await anon.post(
        f"/v1/orgs/{org}/members",
        json={"email": person["email"], "role": "admin"},
        headers=bearer(admin_token),
    )
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "admin"

    # Only an owner grants, changes or removes the owner role.
    for body in (
        {"email": other["email"], "role": "owner"},
        {"email": owner["email"], "role": "member"},
    ):
        refused = await anon.post(f"/v1/orgs/{org}/members", json=body, headers=bearer(admin_token))
        assert refused.status_code == 403, body
    refused = await anon.delete(
        f"/v1/orgs/{org}/members/{owner['id']}", headers=bearer(admin_token)
    )
    assert refused.status_code == 403
    crowned = await anon.post(
        f"/v1/orgs/{org}/members",
        json={"email": other["email"], "role": "owner"},
        headers=bearer(owner_token),
    )
    assert crowned.status_code == 201

    # The user must exist.
    ghost = await anon.post(
        f"/v1/orgs/{org}/members",
        json={"email": email(), "role": "member"},
        headers=bearer(owner_token),
    )
    assert ghost.status_code == 422
    assert ghost.json()["errors"][0]["path"] == "/email"
    invalid_role = await anon.post(
        f"/v1/orgs/{org}/members",
        json={"email": other["email"], "role": "emperor"},
        headers=bearer(owner_token),
    )
    assert invalid_role.status_code == 422

    # Any member lists them, a page at a time.
    _, member_token = await user_in(client, anon, org, "member")
    seen: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await anon.get(
            f"/v1/orgs/{org}/members", params=params, headers=bearer(member_token)
        )
        assert page.status_code == 200, page.text
        seen.update({m["user_id"]: m["role"] for m in page.json()["data"]})
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert seen[owner["id"]] == seen[other["id"]] == "owner"
    assert seen[admin["id"]] == seen[person["id"]] == "admin"

    # A plain member manages nothing.
    refused = await anon.post(
        f"/v1/orgs/{org}/members",
        json={"email": email(), "role": "member"},
        headers=bearer(member_token),
    )
    assert refused.status_code == 403
    refused = await anon.delete(
        f"/v1/orgs/{org}/members/{person['id']}", headers=bearer(member_token)
    )
    assert refused.status_code == 403

    # An admin removes a non-owner; the membership is gone.
    removed = await anon.delete(
        f"/v1/orgs/{org}/members/{person['id']}", headers=bearer(admin_token)
    )
    assert removed.status_code == 204
    again = await anon.delete(f"/v1/orgs/{org}/members/{person['id']}", headers=bearer(admin_token))
    assert again.status_code == 404
    listed = (await client.get(f"/v1/orgs/{org}/members")).json()["data"]
    assert person["id"] not in {m["user_id"] for m in listed}

    # Every change left an audit row.
    target = f"user:{person['id']}"
    assert len(await audit_rows(database_url, "member.added", target)) == 1
    assert len(await audit_rows(database_url, "member.role_changed", target)) == 1
    removal = await audit_rows(database_url, "member.removed", target)
    assert len(removal) == 1
    assert removal[0]["actor"] == f"user:{admin['id']}"
    assert removal[0]["outcome"] == "success"


async def test_me_lists_memberships(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    first, second = (await make_org(client))["name"], (await make_org(client))["name"]
    user, token = await user_in(client, anon, first, "admin")
    await client.post(f"/v1/orgs/{second}/members", json={"email": user["email"], "role": "member"})
    me = (await anon.get("/v1/users/me", headers=bearer(token))).json()
    assert sorted(me["memberships"], key=lambda m: m["role"]) == [
        {"org": first, "role": "admin"},
        {"org": second, "role": "member"},
    ]


async def test_the_last_owner_cannot_be_removed_or_demoted(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    first, first_token = await user_in(client, anon, org, "owner")
    members = f"/v1/orgs/{org}/members"

    assert (
        await anon.delete(f"{members}/{first['id']}", headers=bearer(first_token))
    ).status_code == 409
    demote = await anon.post(
        members, json={"email": first["email"], "role": "admin"}, headers=bearer(first_token)
    )
    assert demote.status_code == 409
    assert (await client.delete(f"{members}/{first['id']}")).status_code == 409  # even for admins

    second = await make_user(client)
    crowned = await anon.post(
        members, json={"email": second["email"], "role": "owner"}, headers=bearer(first_token)
    )
    assert crowned.status_code == 201
    assert (
        await anon.delete(f"{members}/{first['id']}", headers=bearer(first_token))
    ).status_code == 204
    assert (await client.delete(f"{members}/{second['id']}")).status_code == 409


async def test_a_removed_member_loses_access_at_once(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    ds = (await make_dataset(client, org=org, visibility="restricted"))["name"]
    user, token = await user_in(client, anon, org, "member")
    assert (await anon.get(f"/v1/datasets/{ds}", headers=bearer(token))).status_code == 200
    assert (await anon.get(f"/v1/datasets/{ds}/records", headers=bearer(token))).status_code == 200

    removed = await client.delete(f"/v1/orgs/{org}/members/{user['id']}")
    assert removed.status_code == 204
    # No waiting: the very next request with the still-valid token is refused.
    assert (await anon.get(f"/v1/datasets/{ds}", headers=bearer(token))).status_code == 404
    assert (await anon.get(f"/v1/datasets/{ds}/records", headers=bearer(token))).status_code == 404
    listed = await anon.get(f"/v1/orgs/{org}/members", headers=bearer(token))
    assert listed.status_code == 404
    me = await anon.get("/v1/users/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["memberships"] == []


async def test_a_demoted_admin_loses_management_at_once(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    user, token = await user_in(client, anon, org, "admin")
    ds = await anon.post(
        "/v1/datasets",
        json={"name": unique("ds"), "org": org, "title": "T", "schema": {"type": "object"}},
        headers=bearer(token),
    )
    assert ds.status_code == 201, ds.text
    demoted = await client.post(
        f"/v1/orgs/{org}/members", json={"email": user["email"], "role": "member"}
    )
    assert demoted.status_code == 200
    again = await anon.post(
        "/v1/datasets",
        json={"name": unique("ds"), "org": org, "title": "T", "schema": {"type": "object"}},
        headers=bearer(token),
    )
    assert again.status_code == 403


# --- what roles allow ----------------------------------------------------------------


async def test_an_org_admin_manages_datasets_and_apps_of_its_own_org_only(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    mine, theirs = (await make_org(client))["name"], (await make_org(client))["name"]
    _, token = await user_in(client, anon, mine, "admin")
    auth = bearer(token)

    def dataset(org: str) -> dict[str, Any]:
        return {"name": unique("ds"), "org": org, "title": "T", "schema": {"type": "object"}}

    created = await anon.post("/v1/datasets", json=dataset(mine), headers=auth)
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    patched = await anon.patch(f"/v1/datasets/{name}", json={"title": "Renamed"}, headers=auth)
    assert patched.status_code == 200
    app = await anon.post("/v1/apps", json={"org": mine, "name": unique("app")}, headers=auth)
    assert app.status_code == 201, app.text
    key = await anon.post(f"/v1/apps/{app.json()['id']}/keys", json={"name": "k"}, headers=auth)
    assert key.status_code == 201

    assert (await anon.post("/v1/datasets", json=dataset(theirs), headers=auth)).status_code == 422
    other_app = await anon.post(
        "/v1/apps", json={"org": theirs, "name": unique("app")}, headers=auth
    )
    assert other_app.status_code == 422
    foreign = await make_dataset(client, org=theirs, visibility="restricted")
    assert (await anon.get(f"/v1/datasets/{foreign['name']}", headers=auth)).status_code == 404


async def test_a_member_reads_and_writes_but_does_not_manage(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    ds = (await make_dataset(client, org=org, visibility="restricted"))["name"]
    _, token = await user_in(client, anon, org, "member")
    auth = bearer(token)

    written = await anon.post(f"/v1/datasets/{ds}/records", json=RECORD, headers=auth)
    assert written.status_code == 201, written.text
    read = await anon.get(f"/v1/datasets/{ds}/records/{written.json()['id']}", headers=auth)
    assert read.status_code == 200

    app = await anon.post("/v1/apps", json={"org": org, "name": unique("app")}, headers=auth)
    assert app.status_code == 403
    new_ds = await anon.post(
        "/v1/datasets",
        json={"name": unique("ds"), "org": org, "title": "T", "schema": {"type": "object"}},
        headers=auth,
    )
    assert new_ds.status_code == 403
    patched = await anon.patch(f"/v1/datasets/{ds}", json={"title": "Mine now"}, headers=auth)
    assert patched.status_code == 403


async def test_tenants_cannot_see_each_others_members(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org_a, org_b = (await make_org(client))["name"], (await make_org(client))["name"]
    _, token = await user_in(client, anon, org_a, "owner")
    victim, _ = await user_in(client, anon, org_b, "owner")
    auth = bearer(token)
    members_b = f"/v1/orgs/{org_b}/members"

    assert (await anon.get(members_b, headers=auth)).status_code == 404
    invite = await anon.post(
        members_b, json={"email": victim["email"], "role": "member"}, headers=auth
    )
    assert invite.status_code == 404
    assert (await anon.delete(f"{members_b}/{victim['id']}", headers=auth)).status_code == 404
    # Another tenant's org reads exactly like one that does not exist.
    ghost = unique("org")
    missing = await anon.get(f"/v1/orgs/{ghost}/members", headers=auth)
    hidden = await anon.get(members_b, headers=auth)
    assert missing.status_code == hidden.status_code == 404
    assert missing.json()["detail"].replace(ghost, "?") == hidden.json()["detail"].replace(
        org_b, "?"
    )


async def test_only_admin_apps_see_the_people_of_their_org(client: httpx.AsyncClient) -> None:
    org = (await make_org(client))["name"]
    reader = await app_key(client, org, ["datasets:read"])
    manager = await app_key(client, org, ["datasets:read", "admin"])
    assert (await client.get(f"/v1/orgs/{org}/members", headers=bearer(reader))).status_code == 403
    assert (await client.get(f"/v1/orgs/{org}/members", headers=bearer(manager))).status_code == 200


async def test_login_upgrades_a_hash_made_with_weaker_parameters(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, database_url: str
) -> None:
    user = await make_user(client)
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE users SET password_hash = $2 WHERE id = $1::uuid", user["id"], weak
        )
        await login(anon, user["email"])
        upgraded = await conn.fetchval(
            "SELECT password_hash FROM users WHERE id = $1::uuid", user["id"]
        )
    finally:
        await conn.close()
    assert upgraded != weak
    assert not PasswordHasher().check_needs_rehash(upgraded)
    await login(anon, user["email"])  # the new hash verifies the same password
