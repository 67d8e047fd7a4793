"""The provider's pages over HTTP (issue 11, phase 2): a dataset created and edited with
its schema checked as it is typed, a file imported with a report of each failed line,
the audit log filtered and exported; every new form refused without its CSRF token;
a narrowed grantee who sees none of what its grant hides on any of these pages."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from entrepot.portal.console_routes import PAGES
from tests.factories import make_app, make_key, make_org, unique
from tests.integration.portal_console import (
    Console,
    console_app,
    found,
    page_text,
    token_of,
    upload,
)
from tests.integration.portal_helpers import csrf_of, make_person

SCHEMA = {
    "type": "object",
    "required": ["sku", "price"],
    "properties": {
        "sku": {"type": "string", "description": "Stock keeping unit"},
        "price": {"type": "number", "minimum": 0},
        "region": {"type": "string", "enum": ["eu", "us"]},
    },
}


@pytest.fixture(scope="module")
async def console(fresh_database: Callable[[], Awaitable[str]]) -> AsyncIterator[Console]:
    async with console_app(fresh_database) as made:
        yield made


async def owner_of_new_org(console: Console) -> tuple[str, str]:
    org = (await make_org(console.admin))["name"]
    return org, await make_person(console.admin, org)


async def api_dataset(console: Console, org: str, **extra: object) -> str:
    name = unique("prices")
    made = await console.admin.post(
        "/v1/datasets",
        json={
            "name": name,
            "org": org,
            "title": "Prices",
            "schema": SCHEMA,
            "primary_key": "sku",
            **extra,
        },
    )
    assert made.status_code == 201, made.text
    return name


async def test_a_dataset_is_created_with_its_schema_checked_as_it_is_typed(
    console: Console,
) -> None:
    org, owner = await owner_of_new_org(console)
    async with console.browser(owner) as browser:
        new = await browser.get("/portal/datasets/new")
        assert new.status_code == 200, new.text
        assert "The schema is valid" in new.text  # the starter schema
        token = csrf_of(new.text)

        async def check(schema: str, primary_key: str = "sku") -> str:
            answer = await browser.post(
                "/portal/datasets/new/check",
                data={"csrf_token": token, "schema": schema, "primary_key": primary_key},
            )
            assert answer.status_code == 200, answer.text
            return page_text(answer.text)

        assert "The schema is not JSON" in await check('{"type": "object",')
        assert "appears more than once" in await check('{"type": "object", "type": "object"}')
        assert 'must describe an object ("type": "object")' in await check('{"type": "string"}')
        assert "primary_key must name a property" in await check(json.dumps(SCHEMA), "nope")
        invalid = await check('{"type": "object", "properties": {"n": {"type": "nmber"}}}')
        assert "not a valid JSON Schema 2020-12 document" in invalid
        assert "/schema/properties/n/type" in invalid  # the API's own path
        valid = await check(json.dumps(SCHEMA))
        assert "The schema is valid: 3 fields" in valid
        assert "An example record made from the schema" in valid
        assert "Stock keeping unit" in valid
        assert "refused" not in valid

        name = unique("prices")
        form = {
            "csrf_token": token,
            "name": name,
            "title": "Wholesale prices",
            "description": "By region",
            "visibility": "restricted",
            "primary_key": "sku",
            "tags": "prices, retail",
            "schema": json.dumps(SCHEMA),
        }
        made = await browser.post("/portal/datasets", data=form)
        assert made.status_code == 303, made.text
        assert made.headers["location"] == f"/portal/datasets/{name}/import?created=1"
        listed = await browser.get("/portal/datasets")
        assert name in listed.text

        again = await browser.post("/portal/datasets", data=form)
        assert again.status_code == 409
        assert "already exists" in again.text
        bad = await browser.post(
            "/portal/datasets", data={**form, "name": unique("x"), "schema": '{"type": 1}'}
        )
        assert bad.status_code == 422
        assert "not a valid JSON Schema" in bad.text
        nameless = await browser.post("/portal/datasets", data={**form, "name": "Not A Slug"})
        assert nameless.status_code == 422
        assert 'id="e-name"' in nameless.text  # the error beside its field

    stored = await console.admin.get(f"/v1/datasets/{name}")
    assert stored.status_code == 200, stored.text
    body = stored.json()
    assert body["org"] == org
    assert body["schema"] == SCHEMA
    assert body["primary_key"] == "sku"
    assert body["tags"] == ["prices", "retail"]
    audit = await console.admin.get(
        "/v1/audit", params={"action": "dataset.created", "target": f"dataset:{name}"}
    )
    assert audit.json()["data"][0]["actor"].startswith("user:")


async def test_editing_checks_the_draft_against_the_stored_records(console: Console) -> None:
    org, owner = await owner_of_new_org(console)
    name = await api_dataset(console, org)
    put = await console.admin.put(
        f"/v1/datasets/{name}/records/w-1", json={"sku": "w-1", "price": 3}
    )
    assert put.status_code == 201, put.text
    stricter = {**SCHEMA, "required": ["sku", "price", "region"]}
    async with console.browser(owner) as browser:
        edit = await browser.get(f"/portal/datasets/{name}/edit")
        assert edit.status_code == 200, edit.text
        assert "The first stored records, checked against this schema" in edit.text
        token = csrf_of(edit.text)
        form = {
            "csrf_token": token,
            "title": "Prices",
            "description": "",
            "visibility": "restricted",
            "tags": "",
            "schema": json.dumps(stricter),
        }
        checked = await browser.post(f"/portal/datasets/{name}/edit/check", data=form)
        assert checked.status_code == 200
        text = page_text(checked.text)
        assert "refused" in text  # the stored record lacks region
        assert "region" in text

        refused = await browser.post(f"/portal/datasets/{name}/edit", data=form)
        assert 400 <= refused.status_code < 500, refused.text
        assert "w-1" in refused.text or "record" in refused.text

        retitled = await browser.post(
            f"/portal/datasets/{name}/edit",
            data={**form, "title": "Prices by region", "schema": json.dumps(SCHEMA)},
        )
        assert retitled.status_code == 303, retitled.text
    assert (await console.admin.get(f"/v1/datasets/{name}")).json()["title"] == "Prices by region"


async def test_an_import_reports_each_line_that_failed(console: Console) -> None:
    org, owner = await owner_of_new_org(console)
    name = await api_dataset(console, org)
    csv = b"sku,price,region\r\na-1,1.5,eu\r\na-2,abc,eu\r\na-3,2,mars\r\na-4,4,us\r\n"
    async with console.browser(owner) as browser:
        form = await browser.get(f"/portal/datasets/{name}/import?created=1")
        assert form.status_code == 200
        assert "is created" in form.text
        assert 'enctype="multipart/form-data"' in form.text

        aborted = await upload(browser, name, csv, mode="insert", on_error="abort")
        assert aborted.status_code == 422, aborted.text
        assert "nothing was imported" in aborted.text
        count = await console.admin.get(f"/v1/datasets/{name}/records")
        assert count.json()["data"] == []

        skipped = await upload(browser, name, csv, mode="insert", on_error="skip")
        assert skipped.status_code == 200, skipped.text
        text = page_text(skipped.text)
        assert "Imported: 2 new records, 0 replaced; 2 lines skipped" in text
        rows = re.findall(
            r"<tr><td>(\d+)</td><td><code>([^<]*)</code></td><td>([^<]*)</td></tr>", skipped.text
        )
        assert [(line, path) for line, path, _ in rows] == [("3", "/price"), ("4", "/region")]

        ndjson = b'{"sku": "n-1", "price": 1}\n{"sku": "n-2", "price": -1}\n'
        mixed = await upload(
            browser, name, ndjson, filename="more.ndjson", on_error="skip", mode="insert"
        )
        assert mixed.status_code == 200, mixed.text
        assert "Imported: 1 new record," in page_text(mixed.text)
        assert re.search(r"<td>2</td><td><code>/price</code></td>", mixed.text)

        replaced = await upload(
            browser, name, b"sku,price\r\na-1,9\r\n", mode="upsert", on_error="abort"
        )
        assert "0 new records, 1 replaced" in page_text(replaced.text)

        unnamed = await upload(browser, name, b"x", filename="data.txt")
        assert unnamed.status_code == 422
        assert "Say whether the file is CSV or NDJSON" in unnamed.text
        headless = await upload(browser, name, b"nope,price\r\n1,2\r\n")
        assert headless.status_code in (400, 422), headless.text
        token = await token_of(browser, f"/portal/datasets/{name}/import")
        no_file = await browser.post(
            f"/portal/datasets/{name}/import",
            data={"csrf_token": token},
            files={"other": ("", b"", "application/octet-stream")},
        )
        assert no_file.status_code < 500
    listed = await console.admin.get(f"/v1/datasets/{name}/records", params={"limit": "100"})
    assert sorted(r["id"] for r in listed.json()["data"]) == ["a-1", "a-4", "n-1"]
    audited = await console.admin.get(
        "/v1/audit", params={"action": "records.imported", "target": f"dataset:{name}"}
    )
    assert [e["details"]["inserted"] for e in audited.json()["data"]] == [0, 1, 2]


async def test_the_csrf_token_comes_before_any_byte_of_the_file_is_used(
    console: Console,
) -> None:
    org, owner = await owner_of_new_org(console)
    name = await api_dataset(console, org)
    async with console.browser(owner) as browser:
        token = await token_of(browser, f"/portal/datasets/{name}/import")
        files = {"file": ("a.csv", b"sku,price\r\nz-1,1\r\n", "text/csv")}
        without = await browser.post(f"/portal/datasets/{name}/import", files=files)
        assert without.status_code == 403
        # The token after the file is not read: the form sends it first.
        after = await browser.post(
            f"/portal/datasets/{name}/import",
            files=[
                ("file", ("a.csv", b"sku,price\r\nz-1,1\r\n", "text/csv")),
                ("csrf_token", (None, token.encode())),
            ],  # type: ignore[list-item]
        )
        assert after.status_code == 403
        not_multipart = await browser.post(
            f"/portal/datasets/{name}/import", data={"csrf_token": token}
        )
        assert not_multipart.status_code == 415
    assert (await console.admin.get(f"/v1/datasets/{name}/records")).json()["data"] == []


def _route_paths(ids: dict[str, str]) -> list[str]:
    return [
        "/portal" + re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], path)
        for path, method, _ in PAGES
        if method == "POST"
    ]


async def test_every_new_form_is_refused_without_its_csrf_token(console: Console) -> None:
    org, _ = await owner_of_new_org(console)
    name = await api_dataset(console, org)
    admin_email = await make_person(console.admin, org, is_platform_admin=True)
    ids = {
        "name": name,
        "hook": "00000000-0000-4000-8000-000000000000",
        "delivery": "00000000-0000-4000-8000-000000000001",
        "user": "00000000-0000-4000-8000-000000000002",
    }
    async with console.browser(admin_email) as browser:
        token = await token_of(browser)
        for path in _route_paths(ids):
            for data in ({}, {"csrf_token": "x" * 43}, {"csrf_token": token + "x"}):
                refused = await browser.post(path, data=data)
                assert refused.status_code in (403, 415), (path, refused.status_code)
                if refused.status_code == 415:  # the import form: multipart only
                    refused = await browser.post(
                        path, data=data, files={"file": ("a.csv", b"sku\r\n", "text/csv")}
                    )
                assert refused.status_code == 403, (path, data, refused.text[:300])
                assert "did not come from this site" in refused.text
    audit = await console.admin.get("/v1/audit", params={"action": "access.denied", "limit": 1000})
    refused = {e["target"] for e in audit.json()["data"] if e["status"] == 403}
    assert set(_route_paths(ids)) <= refused  # each refusal audited


async def test_the_audit_log_finds_an_approval_and_a_revocation(console: Console) -> None:
    org, owner = await owner_of_new_org(console)
    name = await api_dataset(console, org, visibility="restricted")
    consumer_org = (await make_org(console.admin))["name"]
    app = await make_app(console.admin, consumer_org, scopes=["datasets:read", "records:read"])
    asked = await console.admin.post(
        f"/v1/datasets/{name}/access-requests", json={"app": app["id"], "scopes": ["records:read"]}
    )
    assert asked.status_code == 201, asked.text
    async with console.browser(owner) as browser:
        inbox = await browser.get("/portal/approvals")
        token = csrf_of(inbox.text)
        approved = await browser.post(
            f"/portal/approvals/{asked.json()['id']}/approve",
            data={"csrf_token": token, "scopes": ["records:read"]},
        )
        assert approved.status_code == 303, approved.text
        grant = found(
            r'action="/portal/grants/([0-9a-f-]{36})/revoke"',
            (await browser.get("/portal/approvals")).text,
        )
        revoked = await browser.post(f"/portal/grants/{grant}/revoke", data={"csrf_token": token})
        assert revoked.status_code == 303

        about = await browser.get("/portal/audit", params={"dataset": name})
        assert about.status_code == 200, about.text
        actions = re.findall(r"<td><code>([a-z_.]+)</code></td>", about.text)
        assert "grant.created" in actions
        assert "grant.revoked" in actions
        assert actions.index("grant.revoked") < actions.index("grant.created")  # newest first
        only = await browser.get(
            "/portal/audit", params={"action": "grant.revoked", "dataset": name}
        )
        assert re.findall(r"<td><code>([a-z_.]+)</code></td>", only.text) == ["grant.revoked"]
        prefixed = await browser.get("/portal/audit", params={"action": "grant.*", "dataset": name})
        assert set(re.findall(r"<td><code>(grant\.[a-z_]+)</code></td>", prefixed.text)) == {
            "grant.created",
            "grant.revoked",
        }
        none = await browser.get(
            "/portal/audit", params={"dataset": name, "until": "2000-01-01T00:00"}
        )
        assert "No row matches these filters" in none.text
        denied = await browser.get("/portal/audit", params={"dataset": name, "outcome": "denied"})
        assert "No row matches" in denied.text

        exported = await browser.get("/portal/audit/export", params={"dataset": name})
        assert exported.status_code == 200, exported.text
        assert exported.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in exported.text.splitlines()]
        assert {"grant.created", "grant.revoked"} <= {e["action"] for e in lines}
        assert all(
            e["details"].get("dataset") == name or (e["target"] or "").startswith(f"dataset:{name}")
            for e in lines
        )

        for bad in (
            {"since": "yesterday"},
            {"outcome": "maybe"},
            {"dataset": "Not a name"},
            {"actor": "a" * 600},
        ):
            refused = await browser.get("/portal/audit", params=bad)
            assert refused.status_code == 400, (bad, refused.text[:300])
            assert 'role="alert"' in refused.text
            export_refused = await browser.get("/portal/audit/export", params=bad)
            assert export_refused.status_code == 400

    member = await make_person(console.admin, org, role="member")
    async with console.browser(member) as browser:
        assert (await browser.get("/portal/audit")).status_code == 403
        assert (await browser.get("/portal/audit/export")).status_code == 403
        assert (await browser.get(f"/portal/datasets/{name}/edit")).status_code == 403
        assert (await browser.get(f"/portal/datasets/{name}/import")).status_code == 403
        assert (await browser.get("/portal/datasets/new")).status_code == 403


async def test_a_narrowed_grantee_sees_nothing_hidden_on_the_provider_pages(
    console: Console,
) -> None:
    org, _ = await owner_of_new_org(console)
    schema = {
        **SCHEMA,
        "properties": {**SCHEMA["properties"], "costsecretfield": {"type": "number"}},
    }  # type: ignore[dict-item]
    name = await api_dataset(console, org, schema=schema, visibility="restricted")
    for sku, region in (("seen-sku-1", "eu"), ("hiddensku-us", "us")):
        put = await console.admin.put(
            f"/v1/datasets/{name}/records/{sku}",
            json={"sku": sku, "price": 1, "region": region, "costsecretfield": 4242.5},
        )
        assert put.status_code == 201, put.text
    consumer_org = (await make_org(console.admin))["name"]
    consumer = await make_person(console.admin, consumer_org)
    app = await make_app(
        console.admin, consumer_org, scopes=["datasets:read", "records:read", "changes:read"]
    )
    key = (await make_key(console.admin, app["id"]))["key"]
    asked = await console.admin.post(
        f"/v1/datasets/{name}/access-requests",
        json={"app": app["id"], "scopes": ["datasets:read", "records:read", "changes:read"]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert asked.status_code == 201, asked.text
    approved = await console.admin.post(
        f"/v1/access-requests/{asked.json()['id']}/approve",
        json={"fields": ["sku", "price", "region"], "row_filter": {"region": "eu"}},
    )
    assert approved.status_code == 200, approved.text
    async with console.browser(consumer) as browser:
        pages = [
            "/portal/datasets",
            f"/portal/datasets/{name}/edit",
            f"/portal/datasets/{name}/import",
            "/portal/datasets/new",
            "/portal/audit",
            f"/portal/audit?dataset={name}",
            "/portal/audit/export",
            "/portal/webhooks",
            "/portal/admin",
        ]
        for path in pages:
            shown = await browser.get(path)
            assert shown.status_code < 500, (path, shown.status_code)
            for secret in ("costsecretfield", "4242.5", "hiddensku-us"):
                assert secret not in shown.text, (path, secret)
        token = await token_of(browser)
        checked = await browser.post(
            f"/portal/datasets/{name}/edit/check",
            data={"csrf_token": token, "schema": json.dumps(SCHEMA)},
        )
        assert checked.status_code in (403, 404)
        for secret in ("costsecretfield", "4242.5", "hiddensku-us"):
            assert secret not in checked.text
        imported = await upload(browser, name, b"sku,price\r\nq,1\r\n", token=token)
        assert imported.status_code in (403, 404)
