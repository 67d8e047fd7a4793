"""The audit log: every denial and every mutation is recorded, rows never change,
admins read it with filters, cursors and an NDJSON export, and each organisation's
admins see only their own rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import FastAPI

from entrepot.app import create_app
from entrepot.audit import repository as repo
from entrepot.audit import retention
from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.factories import make_app, make_dataset, make_key, make_org, unique

CLIENT_IP = "203.0.113.7"


@pytest.fixture(scope="module")
async def remote(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling from a recognisable address, without credentials."""
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 4242))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def request_id() -> str:
    return "audit-" + uuid.uuid4().hex


async def audit(
    client: httpx.AsyncClient, as_key: str | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Every row the caller (``as_key``, or the client's admin) can see, following cursors."""
    rows: list[dict[str, Any]] = []
    query = {k: v for k, v in params.items() if v is not None}
    headers = bearer(as_key) if as_key else None
    while True:
        response = await client.get("/v1/audit", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        rows.extend(page["data"])
        if page["next_cursor"] is None:
            return rows
        query["cursor"] = page["next_cursor"]


async def only_row(client: httpx.AsyncClient, rid: str, **params: Any) -> dict[str, Any]:
    rows = await audit(client, request_id=rid, **params)
    assert len(rows) == 1, rows
    return rows[0]


async def org_with_admin_app(client: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    """An organisation and an API key of one of its apps holding the ``admin`` scope."""
    org = await make_org(client)
    app = await make_app(client, org["name"], scopes=["admin", "datasets:read"])
    return org, (await make_key(client, app["id"]))["key"]


# --- denials ---------------------------------------------------------------


async def test_a_missing_credential_is_audited_with_request_id_and_client_ip(
    client: httpx.AsyncClient, remote: httpx.AsyncClient
) -> None:
    rid = request_id()
    path = f"/v1/datasets/{unique('ds')}/records"
    response = await remote.get(path, headers={"X-Request-ID": rid})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == rid

    row = await only_row(client, rid, outcome="denied")
    assert row["action"] == "auth.failed"
    assert row["outcome"] == "denied"
    assert row["status"] == 401
    assert row["actor"] == "anonymous"
    assert row["target"] == path
    assert row["ip"] == CLIENT_IP
    assert row["details"]["reason"] == "missing"
    assert row["details"]["method"] == "GET"


async def test_an_unknown_key_is_audited_by_its_prefix_never_its_value(
    client: httpx.AsyncClient, remote: httpx.AsyncClient
) -> None:
    rid = request_id()
    token = "ent_" + uuid.uuid4().hex + uuid.uuid4().hex
    response = await remote.get("/v1/datasets", headers={**bearer(token), "X-Request-ID": rid})
    assert response.status_code == 401

    row = await only_row(client, rid, outcome="denied")
    assert row["details"]["reason"] == "unknown"
    assert row["actor"] == "prefix:" + token[:12]
    assert token not in orjson.dumps(row).decode()


async def test_an_expired_key_is_audited_against_its_app_and_org(
    client: httpx.AsyncClient, remote: httpx.AsyncClient
) -> None:
    org = await make_org(client)
    app = await make_app(client, org["name"])
    old = await make_key(client, app["id"])
    rotated = await client.post(
        f"/v1/apps/{app['id']}/keys/{old['id']}/rotate", json={"overlap_seconds": 0}
    )
    assert rotated.status_code == 201, rotated.text

    rid = request_id()
    response = await remote.get("/v1/datasets", headers={**bearer(old["key"]), "X-Request-ID": rid})
    assert response.status_code == 401

    row = await only_row(client, rid, outcome="denied")
    assert row["details"]["reason"] == "expired"
    assert row["actor"] == f"key:{old['id']}"
    assert row["app_id"] == app["id"]
    assert row["org_id"] == org["id"]
    assert row["ip"] == CLIENT_IP


async def test_a_revoked_key_is_audited_as_revoked(
    client: httpx.AsyncClient, remote: httpx.AsyncClient
) -> None:
    org = await make_org(client)
    app = await make_app(client, org["name"])
    key = await make_key(client, app["id"])
    revoked = await client.delete(f"/v1/apps/{app['id']}/keys/{key['id']}")
    assert revoked.status_code == 204

    rid = request_id()
    response = await remote.get("/v1/datasets", headers={**bearer(key["key"]), "X-Request-ID": rid})
    assert response.status_code == 401

    row = await only_row(client, rid, outcome="denied")
    assert row["details"]["reason"] == "revoked"
    assert row["actor"] == f"key:{key['id']}"
    assert row["org_id"] == org["id"]


async def test_a_missing_scope_is_audited_as_a_403_with_the_caller(
    client: httpx.AsyncClient, remote: httpx.AsyncClient
) -> None:
    org = await make_org(client)
    app = await make_app(client, org["name"], scopes=["records:read"])
    key = (await make_key(client, app["id"]))["key"]

    rid = request_id()
    response = await remote.get("/v1/datasets", headers={**bearer(key), "X-Request-ID": rid})
    assert response.status_code == 403

    row = await only_row(client, rid, outcome="denied")
    assert row["action"] == "access.denied"
    assert row["status"] == 403
    assert row["actor"] == f"app:{app['id']}"
    assert row["app_id"] == app["id"]
    assert row["org_id"] == org["id"]
    assert row["target"] == "/v1/datasets"
    assert row["ip"] == CLIENT_IP
    assert "datasets:read" in row["details"]["detail"]


async def test_an_invisible_dataset_is_audited_as_a_404_denial(
    client: httpx.AsyncClient, remote: httpx.AsyncClient
) -> None:
    owner = await make_org(client)
    hidden = await make_dataset(client, org=owner["name"], visibility="restricted")
    stranger = await make_org(client)
    app = await make_app(client, stranger["name"], scopes=["datasets:read", "records:read"])
    key = (await make_key(client, app["id"]))["key"]

    rid = request_id()
    path = f"/v1/datasets/{hidden['name']}/records"
    response = await remote.get(path, headers={**bearer(key), "X-Request-ID": rid})
    assert response.status_code == 404

    row = await only_row(client, rid, outcome="denied")
    assert row["action"] == "access.denied"
    assert row["status"] == 404
    assert row["outcome"] == "denied"
    assert row["target"] == path
    assert row["actor"] == f"app:{app['id']}"
    assert row["org_id"] == stranger["id"]


async def test_a_denial_is_still_answered_when_the_audit_store_is_down(
    settings: Settings, database_url: str
) -> None:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        parts = application.state.components
        broken = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
        await broken.close()
        working = parts.replace(broken, asyncpg.Pool)
        try:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                response = await c.get("/v1/apps")
        finally:
            parts.replace(working, asyncpg.Pool)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


# --- mutations and credential events ---------------------------------------


async def test_catalog_and_record_mutations_are_audited_with_actor_app_and_org(
    client: httpx.AsyncClient,
) -> None:
    org = await make_org(client)
    created = await audit(client, action="org.created", target=f"org:{org['name']}")
    assert [r["org_id"] for r in created] == [org["id"]]

    ds = (await make_dataset(client, org=org["name"], primary_key="sku"))["name"]
    [made] = await audit(client, action="dataset.created", target=f"dataset:{ds}")
    assert made["org_id"] == org["id"]
    assert made["actor"].startswith("key:")  # the bootstrap admin key
    assert made["details"]["primary_key"] == "sku"

    app = await make_app(client, org["name"], scopes=["datasets:read", "records:write"])
    writer = bearer((await make_key(client, app["id"]))["key"])
    rids = [request_id() for _ in range(4)]
    record = {"sku": "a-1", "name": "Anvil", "price": 10}
    url = f"/v1/datasets/{ds}/records"
    responses = [
        await client.post(url, json=record, headers={**writer, "X-Request-ID": rids[0]}),
        await client.put(
            f"{url}/a-1", json={**record, "price": 11}, headers={**writer, "X-Request-ID": rids[1]}
        ),
        await client.patch(
            f"{url}/a-1", json={"stock": 3}, headers={**writer, "X-Request-ID": rids[2]}
        ),
        await client.delete(f"{url}/a-1", headers={**writer, "X-Request-ID": rids[3]}),
    ]
    assert [r.status_code for r in responses] == [201, 200, 200, 204]

    rows = [await only_row(client, rid, action="record.*") for rid in rids]
    assert [r["action"] for r in rows] == [
        "record.created",
        "record.replaced",
        "record.patched",
        "record.deleted",
    ]
    for row, status in zip(rows, [201, 200, 200, 204], strict=True):
        assert row["actor"] == f"app:{app['id']}"
        assert row["app_id"] == app["id"]
        assert row["org_id"] == org["id"]
        assert row["target"] == f"dataset:{ds}/record:a-1"
        assert row["outcome"] == "success"
        assert row["status"] == status

    patched = await client.patch(f"/v1/datasets/{ds}", json={"title": "Tools"})
    assert patched.status_code == 200
    [updated] = await audit(client, action="dataset.updated", target=f"dataset:{ds}")
    assert updated["details"] == {"changed": ["title"], "values": {"title": "Tools"}}

    assert (await client.delete(f"/v1/datasets/{ds}")).status_code == 204
    [deleted] = await audit(client, action="dataset.deleted", target=f"dataset:{ds}")
    assert deleted["org_id"] == org["id"]


async def test_a_failed_write_leaves_no_success_row(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    url = f"/v1/datasets/{ds}/records"
    first = await client.post(url, json={"sku": "x", "name": "X", "price": 1})
    assert first.status_code == 201

    invalid, duplicate = request_id(), request_id()
    bad = await client.post(url, json={"sku": "y", "price": -1}, headers={"X-Request-ID": invalid})
    again = await client.post(
        url, json={"sku": "x", "name": "X", "price": 1}, headers={"X-Request-ID": duplicate}
    )
    assert (bad.status_code, again.status_code) == (422, 409)
    assert await audit(client, request_id=invalid) == []
    assert await audit(client, request_id=duplicate) == []
    assert len(await audit(client, target=f"dataset:{ds}/record:*")) == 1


async def test_an_idempotent_replay_writes_no_second_row(client: httpx.AsyncClient) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"sku": "once", "name": "Once", "price": 1}
    first = await client.post(f"/v1/datasets/{ds}/records", json=body, headers=headers)
    replay = await client.post(f"/v1/datasets/{ds}/records", json=body, headers=headers)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(await audit(client, target=f"dataset:{ds}/record:once")) == 1


async def test_a_bulk_import_writes_one_row_with_counts_and_none_when_aborted(
    client: httpx.AsyncClient,
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    lines = [orjson.dumps({"sku": f"s-{i}", "name": "N", "price": i}) for i in range(5)]
    ndjson = {"Content-Type": "application/x-ndjson"}

    aborted = request_id()
    body = b"\n".join([*lines, b'{"sku": "bad"}'])
    response = await client.post(
        f"/v1/datasets/{ds}/import", content=body, headers={**ndjson, "X-Request-ID": aborted}
    )
    assert response.status_code == 422
    assert await audit(client, request_id=aborted) == []

    response = await client.post(
        f"/v1/datasets/{ds}/import", content=b"\n".join(lines), headers=ndjson
    )
    assert response.status_code == 200, response.text
    [row] = await audit(client, action="records.imported", target=f"dataset:{ds}")
    assert row["details"] == {
        "format": "ndjson",
        "mode": "insert",
        "on_error": "abort",
        "inserted": 5,
        "updated": 0,
        "failed": 0,
    }
    assert await audit(client, target=f"dataset:{ds}/record:*") == []


async def test_the_first_use_of_a_key_is_logged_once(client: httpx.AsyncClient) -> None:
    org = await make_org(client)
    app = await make_app(client, org["name"])
    key = await make_key(client, app["id"])
    assert await audit(client, action="credential.first_used", target=f"key:{key['id']}") == []
    for _ in range(3):
        assert (await client.get("/v1/datasets", headers=bearer(key["key"]))).status_code == 200

    [row] = await audit(client, action="credential.first_used", target=f"key:{key['id']}")
    assert row["actor"] == f"app:{app['id']}"
    assert row["app_id"] == app["id"]
    assert row["org_id"] == org["id"]


# --- integrity ---------------------------------------------------------------


async def test_audit_rows_cannot_be_changed_even_through_the_database(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await make_org(client)  # at least one row to aim at
    conn = await asyncpg.connect(database_url)
    try:
        for statement in (
            "UPDATE audit_log SET actor = 'else' WHERE id = (SELECT max(id) FROM audit_log)",
            "DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)",
            "TRUNCATE audit_log",
        ):
            tx = conn.transaction()
            await tx.start()
            try:
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                    await conn.execute(statement)
            finally:
                await tx.rollback()
    finally:
        await conn.close()

    for method in ("PATCH", "PUT", "DELETE", "POST"):
        assert (await client.request(method, "/v1/audit")).status_code == 405


async def test_no_secret_ever_reaches_the_audit_log(
    client: httpx.AsyncClient, remote: httpx.AsyncClient, database_url: str
) -> None:
    org = await make_org(client)
    app = await make_app(client, org["name"])
    key = await make_key(client, app["id"])
    rotated = await client.post(f"/v1/apps/{app['id']}/keys/{key['id']}/rotate", json={})
    secret = await client.post(f"/v1/apps/{app['id']}/rotate-secret")
    assert (rotated.status_code, secret.status_code) == (201, 200)
    secrets = [
        ADMIN_TOKEN,
        app["client_secret"],
        key["key"],
        rotated.json()["key"],
        secret.json()["client_secret"],
    ]
    for used in secrets[2:4]:
        await remote.get("/v1/datasets", headers=bearer(used))
    await client.delete(f"/v1/apps/{app['id']}/keys/{key['id']}")
    await remote.get("/v1/datasets", headers=bearer(key["key"]))  # now refused
    for wrong in secrets[1:]:
        await remote.get("/v1/datasets", headers=bearer(wrong + "x"))

    conn = await asyncpg.connect(database_url)
    try:
        everything: str = await conn.fetchval("SELECT string_agg(a::text, E'\\n') FROM audit_log a")
    finally:
        await conn.close()
    assert f"key:{key['id']}" in everything
    for value in secrets:
        assert value not in everything


# --- reading: who sees what ------------------------------------------------


async def test_an_org_admin_sees_only_their_org_whatever_the_filters(
    client: httpx.AsyncClient,
) -> None:
    org_a, admin_a = await org_with_admin_app(client)
    org_b = await make_org(client)
    ds_a = (await make_dataset(client, org=org_a["name"]))["name"]
    ds_b = (await make_dataset(client, org=org_b["name"]))["name"]
    as_a = bearer(admin_a)

    async def seen_by_a(**params: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        query = {k: v for k, v in params.items() if v is not None}
        while True:
            response = await client.get("/v1/audit", params=query, headers=as_a)
            assert response.status_code == 200, response.text
            rows.extend(response.json()["data"])
            if response.json()["next_cursor"] is None:
                return rows
            query["cursor"] = response.json()["next_cursor"]

    everything = await seen_by_a(limit=1000)
    assert everything
    assert {r["org_id"] for r in everything} == {org_a["id"]}
    assert any(r["target"] == f"dataset:{ds_a}" for r in everything)
    assert await seen_by_a(target=f"dataset:{ds_b}") == []
    assert await seen_by_a(target="dataset:*", action="dataset.created") == [
        r for r in everything if r["action"] == "dataset.created"
    ]
    admin_actor = everything[-1]["actor"]  # the platform admin made org A
    assert {r["org_id"] for r in await seen_by_a(actor=admin_actor)} == {org_a["id"]}

    for path in ("/v1/audit", "/v1/audit/export"):
        refused = await client.get(path, params={"org": org_b["name"]}, headers=as_a)
        assert refused.status_code == 404
    export = await client.get("/v1/audit/export", headers=as_a)
    assert export.status_code == 200
    assert {orjson.loads(line)["org_id"] for line in export.content.splitlines()} == {org_a["id"]}

    # The platform admin sees org B's rows, and can narrow to them.
    assert {r["org_id"] for r in await audit(client, org=org_b["name"])} == {org_b["id"]}


async def test_a_provider_sees_denied_attempts_on_its_datasets_but_not_who_beyond_app_and_org(
    client: httpx.AsyncClient, remote: httpx.AsyncClient
) -> None:
    provider, provider_admin = await org_with_admin_app(client)
    restricted = (
        await make_dataset(client, org=provider["name"], visibility="restricted", primary_key="sku")
    )["name"]
    public = (await make_dataset(client, org=provider["name"], primary_key="sku"))["name"]
    consumer, consumer_admin = await org_with_admin_app(client)
    bystander, bystander_admin = await org_with_admin_app(client)
    app = await make_app(
        client, consumer["name"], scopes=["datasets:read", "records:read", "records:write"]
    )
    key = (await make_key(client, app["id"]))["key"]
    attempts = {
        "hidden": ("GET", f"/v1/datasets/{restricted}/records/x", 404),
        "read-only": ("PUT", f"/v1/datasets/{public}/records/x", 403),
        "missing": ("GET", "/v1/datasets/no-such-dataset/records/x", 404),
    }
    ids = {}
    for name, (method, path, status) in attempts.items():
        ids[name] = request_id()
        answered = await remote.request(
            method,
            path,
            json={"sku": "x", "name": "x", "price": 1} if method == "PUT" else None,
            headers={**bearer(key), "X-Request-ID": ids[name]},
        )
        assert answered.status_code == status, answered.text

    seen = await audit(client, provider_admin, outcome="denied")
    mine = {r["target"]: r for r in seen if r["app_id"] == app["id"]}
    assert set(mine) == {attempts["hidden"][1], attempts["read-only"][1]}  # not the missing one
    for row in mine.values():
        assert row["actor"] == f"app:{app['id']}"
        assert row["org_id"] == consumer["id"]
        assert row["ip"] is None
        assert row["request_id"] is None
        assert set(row["details"]) <= {"method", "detail"}
    assert mine[attempts["hidden"][1]]["status"] == 404
    assert mine[attempts["read-only"][1]]["status"] == 403

    # The consumer's own admins see their app's denials in full, the platform admin too;
    # an organisation with nothing to do with them sees none.
    in_full = await only_row(client, ids["hidden"], outcome="denied")
    assert (in_full["ip"], in_full["request_id"]) == (CLIENT_IP, ids["hidden"])
    assert await audit(client, consumer_admin, request_id=ids["hidden"], outcome="denied") == [
        in_full
    ]
    assert [r["request_id"] for r in await audit(client, consumer_admin, outcome="denied")] == [
        ids["missing"],
        ids["read-only"],
        ids["hidden"],
    ]
    assert [r for r in await audit(client, bystander_admin) if r["app_id"] == app["id"]] == []
    assert bystander["id"] not in {r["org_id"] for r in seen}


async def test_anyone_else_is_refused_and_the_refusal_is_audited(
    client: httpx.AsyncClient,
) -> None:
    org = await make_org(client)
    app = await make_app(client, org["name"], scopes=["datasets:read", "records:read"])
    key = (await make_key(client, app["id"]))["key"]
    for path in ("/v1/audit", "/v1/audit/export"):
        rid = request_id()
        response = await client.get(path, headers={**bearer(key), "X-Request-ID": rid})
        assert response.status_code == 403
        row = await only_row(client, rid, outcome="denied")
        assert (row["action"], row["target"], row["actor"]) == (
            "access.denied",
            path,
            f"app:{app['id']}",
        )


# --- reading: filters, pages, export -------------------------------------------


async def test_filters_and_cursor_pagination(client: httpx.AsyncClient) -> None:
    org = await make_org(client)
    prefix = unique("audited")
    names = [f"{prefix}-{i}" for i in range(5)]
    for name in names:
        await make_dataset(client, org=org["name"], name=name)
    query = {"org": org["name"], "action": "dataset.created", "limit": "2"}

    pages: list[list[dict[str, Any]]] = []
    cursors: list[str] = []
    while True:
        params = {**query, **({"cursor": cursors[-1]} if cursors else {})}
        response = await client.get("/v1/audit", params=params)
        assert response.status_code == 200, response.text
        pages.append(response.json()["data"])
        if response.json()["next_cursor"] is None:
            break
        cursors.append(response.json()["next_cursor"])
    assert [len(p) for p in pages] == [2, 2, 1]
    rows = [r for p in pages for r in p]
    assert [r["target"] for r in rows] == [f"dataset:{n}" for n in reversed(names)]
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)

    assert len(await audit(client, target=f"dataset:{prefix}*")) == 5
    assert len(await audit(client, target=f"dataset:{names[0]}")) == 1
    assert await audit(client, target=f"dataset:{prefix}", action="dataset.created") == []
    assert await audit(client, org=org["name"], outcome="denied") == []
    assert len(await audit(client, org=org["name"], outcome="success")) == 6  # + org.created
    assert len(await audit(client, org=org["name"], action="dataset.*")) == 5

    middle = rows[2]["at"]
    assert len(await audit(client, **query, since=middle)) == 3
    assert len(await audit(client, **query, until=middle)) == 2

    other_query = await client.get("/v1/audit", params={"org": org["name"], "cursor": cursors[0]})
    assert other_query.status_code == 400
    for bad in ({"outcome": "maybe"}, {"since": "yesterday"}, {"limit": "0"}, {"cursor": "x"}):
        assert (await client.get("/v1/audit", params=bad)).status_code == 400
    assert (await client.get("/v1/audit", params={"org": unique("nope")})).status_code == 404


async def test_the_ndjson_export_matches_the_list(client: httpx.AsyncClient) -> None:
    org = await make_org(client)
    for _ in range(3):
        ds = (await make_dataset(client, org=org["name"]))["name"]
        await client.patch(f"/v1/datasets/{ds}", json={"tags": ["x"]})
    listed = await audit(client, org=org["name"], limit=2)
    response = await client.get("/v1/audit/export", params={"org": org["name"]})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    exported = [orjson.loads(line) for line in response.content.splitlines()]
    assert len(listed) == 7
    assert exported == listed

    filtered = await client.get(
        "/v1/audit/export", params={"org": org["name"], "action": "dataset.updated"}
    )
    assert [orjson.loads(line) for line in filtered.content.splitlines()] == [
        r for r in listed if r["action"] == "dataset.updated"
    ]


# --- monthly partitions and retention ------------------------------------------------


async def _partitions(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT inhrelid::regclass::text AS name FROM pg_inherits "
        "WHERE inhparent = 'audit_log'::regclass ORDER BY 1"
    )
    return [r["name"] for r in rows]


async def _write_old_rows(conn: asyncpg.Connection, target: str, *days: str) -> list[int]:
    """Rows as they would have been written on ``days``, no partition being there for them."""
    rows = await conn.fetch(
        "INSERT INTO audit_log (at, actor, action, target, outcome) "
        "SELECT d::timestamptz, 'test', 'test.old', $1, 'success' FROM unnest($2::text[]) d "
        "RETURNING id, tableoid::regclass::text AS part",
        target,
        list(days),
    )
    assert {r["part"] for r in rows} == {"audit_log_default"}
    return [r["id"] for r in rows]


async def test_this_month_and_the_next_have_partitions(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        months = await conn.fetch(
            "SELECT 'audit_log_p' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') "
            "+ make_interval(months => k), 'YYYYMM') AS name FROM generate_series(0, 1) k"
        )
        partitions = await _partitions(conn)
        assert {m["name"] for m in months} <= set(partitions)
        assert "audit_log_default" in partitions
        part = await conn.fetchval(
            "INSERT INTO audit_log (actor, action, outcome) VALUES ('test', 'test.now', 'success') "
            "RETURNING tableoid::regclass::text"
        )
        assert part == months[0]["name"]
    finally:
        await conn.close()


async def test_rows_that_reached_the_default_partition_get_a_month_of_their_own(
    app: FastAPI, database_url: str
) -> None:
    target = unique("stray")
    conn = await asyncpg.connect(database_url)
    try:
        ids = await _write_old_rows(conn, target, "2002-07-03T10:00:00Z", "2002-07-30T23:59:59Z")
        pool = app.state.components.get(asyncpg.Pool)
        made = await repo.prepare_partitions(pool, retention.AHEAD_DAYS)
        assert "audit_log_p200207" in made
        rows = await conn.fetch(
            "SELECT id, tableoid::regclass::text AS part FROM audit_log WHERE target = $1 "
            "ORDER BY id",
            target,
        )
        assert [(r["id"], r["part"]) for r in rows] == [(i, "audit_log_p200207") for i in ids]
        assert await conn.fetchval("SELECT count(*) FROM audit_log_default") == 0
        # Moved, and as append-only there as anywhere.
        for statement in (
            "UPDATE audit_log SET actor = 'else' WHERE target = $1",
            "DELETE FROM audit_log WHERE target = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement, target)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("TRUNCATE audit_log_p200207")
    finally:
        await conn.close()


async def test_retention_drops_whole_months_past_it_and_keeps_the_rest(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    old, recent = unique("old"), unique("recent")
    conn = await asyncpg.connect(database_url)
    try:
        await _write_old_rows(conn, old, "2001-03-05T00:00:00Z", "2001-03-31T12:00:00Z")
        recent_org = await make_org(client, name=recent)  # audited now
        # Off by default: nothing is dropped, the old rows only find their month.
        assert await retention.maintain(app.state.components.get(asyncpg.Pool), 0) == []
        assert "audit_log_p200103" in await _partitions(conn)

        dropped = await retention.maintain(app.state.components.get(asyncpg.Pool), 3650)
        assert "audit_log_p200103" in dropped
        partitions = await _partitions(conn)
        assert "audit_log_p200103" not in partitions
        assert await conn.fetchval("SELECT to_regclass('audit_log_p200103')") is None
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE target = $1", old) == 0
        assert "audit_log_default" in partitions
        current = await conn.fetchval(
            "SELECT 'audit_log_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')"
        )
        assert current in partitions
    finally:
        await conn.close()
    [row] = await audit(client, action="org.created", target=f"org:{recent_org['name']}")
    assert row["org_id"] == recent_org["id"]
    [note] = await audit(
        client, action="audit.partition_dropped", target="audit_partition:audit_log_p200103"
    )
    assert note["actor"] == "system:housekeeping"
    assert note["details"]["retention_days"] == 3650


async def test_retention_never_drops_what_is_not_past(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.RaiseError, match="future"):
            await conn.fetch("SELECT audit_log_drop_before(now() + interval '1 day')")
    finally:
        await conn.close()
