"""Every resource command against the real server: create, get, list, patch, delete."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from entrepot.client import Client
from tests.cli.conftest import SCHEMA, Cli, unique
from tests.sdk.conftest import Receiver


def test_orgs(cli: Cli) -> None:
    name = unique("org")
    created = cli.json("orgs", "create", name, "--title", "Acme")
    assert (created["name"], created["title"]) == (name, "Acme")
    assert cli.json("orgs", "get", name)["title"] == "Acme"
    assert name in {o["name"] for o in cli.json("orgs", "list")}
    assert cli.json("orgs", "members", name) == []


def test_datasets(cli: Cli, org: str, schema_file: Path, tmp_path: Path) -> None:
    name = unique("ds")
    created = cli.json(
        "datasets",
        "create",
        name,
        "--schema",
        str(schema_file),
        "--org",
        org,
        "--title",
        "Products",
        "--primary-key",
        "sku",
        "--visibility",
        "public",
        "--index",
        "price",
        "--tag",
        "retail",
    )
    assert created["schema"] == SCHEMA
    assert (created["primary_key"], created["indexes"], created["tags"]) == (
        "sku",
        ["price"],
        ["retail"],
    )
    assert cli.json("datasets", "get", name)["visibility"] == "public"
    lines = cli.ok("datasets", "list", "--org", org, "--output", "ndjson").stdout.splitlines()
    assert [json.loads(line)["name"] for line in lines] == [name]

    bigger = {**SCHEMA, "properties": {**SCHEMA["properties"], "colour": {"type": "string"}}}
    (tmp_path / "v2.json").write_text(json.dumps(bigger))
    patched = cli.json(
        "datasets",
        "patch",
        name,
        "--description",
        "All of them",
        "--schema",
        str(tmp_path / "v2.json"),
        "--no-auto-approve",
    )
    assert patched["description"] == "All of them"
    assert "colour" in patched["schema"]["properties"]
    licensed = cli.json(
        "datasets",
        "patch",
        name,
        "--license",
        "ODbL-1.0",
        "--license-url",
        "https://opendatacommons.org/licenses/odbl/",
        "--contact-email",
        "data@example.org",
    )
    assert (licensed["license"], licensed["contact"]) == (
        "ODbL-1.0",
        {"name": None, "email": "data@example.org", "url": None},
    )
    refused = cli.run("datasets", "patch", name, "--contact-url", "not a url")
    assert refused.exit_code == 1
    assert "/contact/url" in refused.stderr
    nothing = cli.run("datasets", "patch", name)
    assert nothing.exit_code == 2
    assert "nothing to change" in nothing.stderr

    unconfirmed = cli.run("datasets", "delete", name)
    assert unconfirmed.exit_code == 2
    assert "--yes" in unconfirmed.stderr
    cli.ok("datasets", "delete", name, "--yes")
    gone = cli.run("datasets", "get", name)
    assert gone.exit_code == 1
    assert "404 Not found" in gone.stderr


def test_records(cli: Cli, products: str) -> None:
    put = cli.json(
        "records", "put", products, "d", "--data", '{"sku": "d", "name": "D", "price": 35}'
    )
    assert (put["id"], put["version"], put["data"]["price"]) == ("d", 1, 35)
    assert set(put) == {"id", "version", "data", "created_at", "updated_at"}

    created = cli.json("records", "create", products, "-d", '{"sku": "e", "name": "E"}')
    assert created["id"] == "e"
    got = cli.json("records", "get", products, "d")
    assert got["data"] == {"sku": "d", "name": "D", "price": 35}

    patched = cli.json("records", "patch", products, "d", "-d", '{"price": 30}', "--if-match", "1")
    assert (patched["version"], patched["data"]["price"]) == (2, 30)
    stale = cli.run("records", "patch", products, "d", "-d", '{"price": 1}', "--if-match", "1")
    assert stale.exit_code == 1
    assert "412" in stale.stderr

    found = cli.json(
        "records",
        "list",
        products,
        "--filter",
        "price[lt]=26",
        "--filter",
        "region=eu",
        "--sort",
        "-price",
        "--fields",
        "sku,price",
    )
    assert [(r["id"], r["data"]) for r in found] == [
        ("b", {"sku": "b", "price": 15}),
        ("a", {"sku": "a", "price": 5}),
    ]
    some = cli.ok(
        "records",
        "list",
        products,
        "-f",
        "sku[in]=a,c",
        "--sort",
        "sku",
        "--limit",
        "1",
        "-o",
        "ndjson",
    ).stdout.splitlines()
    assert [json.loads(line)["id"] for line in some] == ["a"]
    table = cli.ok("records", "list", products, "--output", "table").stdout
    assert "version" in table
    assert "d" in table

    bad = cli.run("records", "put", products, "f", "-d", '{"sku": "f", "name": "F", "price": -1}')
    assert bad.exit_code == 1
    assert "422" in bad.stderr
    assert "/price" in bad.stderr
    assert cli.run("records", "list", products, "-f", "nope[zz]=1").exit_code == 1

    cli.ok("records", "delete", products, "d", "--if-match", "2")
    missing = cli.run("records", "get", products, "d")
    assert missing.exit_code == 1
    assert "404 Not found" in missing.stderr


def test_import_and_export(cli: Cli, products: str, tmp_path: Path) -> None:
    source = tmp_path / "more.csv"
    source.write_text("sku,name,price\nx1,=cmd,1\nx2,Two,2\n")
    report = cli.json("import", products, str(source), "--mode", "upsert")
    assert (report["inserted"], report["updated"], report["failed"]) == (2, 0, 0)
    skipped = cli.json("import", products, str(source), "--on-error", "skip", "--format", "csv")
    assert skipped["failed"] == 2  # insert of ids that exist: each line refused, kept going

    out = tmp_path / "all.ndjson"
    cli.ok("export", products, "-o", str(out))
    assert len(out.read_text().splitlines()) == 5
    piped = cli.ok("export", products, "--envelope").stdout.splitlines()
    assert {json.loads(line)["id"] for line in piped} == {"a", "b", "c", "x1", "x2"}
    sheet = tmp_path / "sheet.csv"
    cli.ok("export", products, "--format", "csv", "--spreadsheet-safe", "-o", str(sheet))
    assert "'=cmd" in sheet.read_text()
    exact = tmp_path / "exact.csv"
    cli.ok("export", products, "--format", "csv", "-o", str(exact))
    assert ",=cmd," in exact.read_text()  # CSV is exact by default: it imports back unchanged
    assert "no longer imports back unchanged" in " ".join(cli.ok("export", "--help").stdout.split())
    assert cli.run("export", products, "--spreadsheet-safe").exit_code == 2


def test_export_as_parquet_and_arrow(cli: Cli, products: str, tmp_path: Path) -> None:
    lines = [json.loads(x) for x in cli.ok("export", products, "--envelope").stdout.splitlines()]
    parquet = tmp_path / "all.parquet"
    done = cli.ok("export", products, "--format", "parquet", "-o", str(parquet))
    assert f"Exported {parquet.stat().st_size:,} bytes of {products}" in done.stderr + done.stdout
    table = pq.read_table(parquet)
    assert table.column("_id").to_pylist() == [line["id"] for line in lines]
    assert table.column("name").to_pylist() == [line["data"].get("name") for line in lines]
    stream = tmp_path / "all.arrows"
    cli.ok("export", products, "--format", "arrow", "-o", str(stream))
    assert pa.ipc.open_stream(stream.read_bytes()).read_all().equals(table)
    assert cli.run("export", products, "--format", "parquet", "--envelope").exit_code == 2


def test_apps_and_keys(cli: Cli, org: str, products: str) -> None:
    app = cli.json(
        "apps",
        "create",
        org,
        unique("app"),
        "--description",
        "Reads",
        "--scope",
        "datasets:read",
        "--scope",
        "records:read",
    )
    assert app["client_secret"]
    assert app["scopes"] == ["datasets:read", "records:read"]
    assert cli.json("apps", "get", app["id"])["name"] == app["name"]
    assert app["id"] in {a["id"] for a in cli.json("apps", "list", "--org", org)}
    patched = cli.json(
        "apps", "patch", app["id"], "--description", "Reads prices", "--plan", "default"
    )
    assert patched["description"] == "Reads prices"
    rotated_secret = cli.json("apps", "rotate-secret", app["id"])
    assert rotated_secret["client_secret"] != app["client_secret"]

    key = cli.json(
        "keys",
        "create",
        app["id"],
        "laptop",
        "--scope",
        "datasets:read",
        "--expires-at",
        "2099-01-01T00:00:00Z",
    )
    assert key["key"]
    assert key["prefix"] in key["key"]
    listed = cli.json("keys", "list", app["id"])
    assert [k["id"] for k in listed] == [key["id"]]
    assert "key" not in listed[0]
    as_app = cli.json("datasets", "get", products, token=key["key"])
    assert as_app["name"] == products
    rotated = cli.json("keys", "rotate", app["id"], key["id"], "--overlap", "0")
    assert rotated["replaces"] == key["id"]
    cli.ok("keys", "revoke", app["id"], rotated["id"])
    refused = cli.run("datasets", "get", products, token=rotated["key"])
    assert refused.exit_code == 1
    assert "401" in refused.stderr

    cli.ok("apps", "delete", app["id"])
    assert cli.run("apps", "get", app["id"]).exit_code == 1


def test_access_requests_and_grants(cli: Cli, admin: Client, org: str) -> None:
    restricted = admin.datasets.create(
        unique("ds"), org=org, title="Prices", schema=SCHEMA, primary_key="sku"
    ).name
    for sku, price in (("a", 10), ("b", 80)):
        admin.records.put(restricted, sku, {"sku": sku, "name": sku, "price": price})
    buyers = admin.orgs.create(unique("buyers"), "Buyers").name
    app = admin.apps.create(buyers, unique("buyer"), scopes=["datasets:read", "records:read"])
    key = admin.keys.create(app.id, "reader").key

    asked = cli.json(
        "access-requests",
        "create",
        restricted,
        "--app",
        app.id,
        "--scope",
        "records:read",
        "--reason",
        "Comparison",
        token=key,
    )
    assert asked["status"] == "pending"
    pending = cli.json("access-requests", "list", "--dataset", restricted)
    assert [r["id"] for r in pending] == [asked["id"]]
    assert cli.json("access-requests", "get", asked["id"])["reason"] == "Comparison"
    approved = cli.json(
        "access-requests",
        "approve",
        asked["id"],
        "--note",
        "cheap only",
        "--field",
        "sku",
        "--field",
        "price",
        "--row-filter",
        '{"price": {"lt": 50}}',
        "--expires-at",
        "2099-01-01",
    )
    assert approved["status"] == "approved"
    assert approved["grant_id"]
    seen = cli.json("records", "list", restricted, token=key)
    assert [r["data"] for r in seen] == [{"sku": "a", "price": 10}]
    assert cli.json("access-requests", "list", "--dataset", restricted) == []
    assert len(cli.json("access-requests", "list", "--dataset", restricted, "--status", "all")) == 1

    grants = cli.json("grants", "list", "--app", app.id)
    assert [g["id"] for g in grants] == [approved["grant_id"]]
    grant = cli.json("grants", "get", approved["grant_id"])
    assert grant["row_filter"] == {"price": {"lt": 50}}
    cli.ok("grants", "revoke", approved["grant_id"])
    assert cli.json("grants", "get", approved["grant_id"])["status"] == "revoked"

    again = cli.json(
        "access-requests",
        "create",
        restricted,
        "--app",
        app.id,
        "--scope",
        "records:read",
        token=key,
    )
    rejected = cli.json("access-requests", "reject", again["id"], "--note", "Not now")
    assert rejected["status"] == "rejected"


def test_webhooks(cli: Cli, admin: Client, org: str, products: str, receiver: Receiver) -> None:
    app = admin.apps.create(org, unique("hooks"), scopes=["changes:read", "webhooks:manage"])
    hook = cli.json(
        "webhooks",
        "create",
        app.id,
        receiver.url,
        "--dataset",
        products,
        "--event",
        "record.created",
        "--event",
        "record.updated",
    )
    assert hook["secret"].startswith("whsec_")
    assert hook["events"] == ["record.created", "record.updated"]
    assert [w["id"] for w in cli.json("webhooks", "list", app.id)] == [hook["id"]]
    assert cli.json("webhooks", "get", hook["id"])["url"] == receiver.url

    admin.records.put(products, "w", {"sku": "w", "name": "W"})
    receiver.wait_for(1)
    deliveries = cli.json("webhooks", "deliveries", hook["id"], "--status", "delivered")
    # (Not only "w": the server also delivered changes committed before the webhook existed.)
    assert "w" in [d["record_id"] for d in deliveries]
    retried = cli.json("webhooks", "retry", hook["id"], deliveries[0]["id"])
    assert retried["id"] == deliveries[0]["id"]
    replayed = cli.json("webhooks", "replay", hook["id"], "--dataset", products, "--from-seq", "1")
    assert replayed["enqueued"] >= 1

    rotated = cli.json("webhooks", "rotate-secret", hook["id"], "--overlap", "60")
    assert rotated["secret"] != hook["secret"]
    assert cli.json("webhooks", "patch", hook["id"], "--disabled")["disabled"] is True
    cli.ok("webhooks", "delete", hook["id"])
    assert cli.run("webhooks", "get", hook["id"]).exit_code == 1


def test_audit_and_usage(cli: Cli, admin: Client, org: str, tmp_path: Path) -> None:
    app = admin.apps.create(org, unique("metered"), scopes=["datasets:read"])
    key = admin.keys.create(app.id, "k").key
    cli.ok("datasets", "list", "--limit", "1", token=key)
    entries = cli.json(
        "audit", "list", "--action", "app.*", "--target", f"app:{app.id}", "--limit", "5"
    )
    assert entries
    assert all(e["action"].startswith("app.") for e in entries)
    assert cli.json(
        "audit",
        "list",
        "--org",
        org,
        "--outcome",
        "success",
        "--since",
        "2020-01-01",
        "--limit",
        "1",
    )
    saved = tmp_path / "audit.ndjson"
    cli.ok("audit", "export", "-o", str(saved), "--action", "app.*")
    assert saved.read_text().count("\n") >= 1

    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    usage = cli.json("usage", app.id, "--from", since, "--granularity", "day")
    assert usage["app"] == app.id
    assert usage["total"] >= 1
    table = cli.ok("usage", app.id, "--output", "table")
    assert "requests from" in table.stderr
    ds = admin.datasets.create(
        unique("ds"), org=org, title="Metered", schema=SCHEMA, visibility="public"
    ).name
    cli.ok("datasets", "get", ds, token=key)
    one = cli.json("usage", app.id, "--dataset", ds)
    assert (one["dataset"], one["total"]) == (ds, 1)
    assert {row["dataset"] for row in one["data"]} == {ds}


def test_sync(cli: Cli, products: str, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror.db"
    done = cli.ok(
        "sync",
        products,
        "--to",
        f"sqlite:///{mirror}",
        "--once",
        "--table-prefix",
        "m_",
        "--wait",
        "0",
    )
    assert done.exit_code == 0
    with sqlite3.connect(mirror) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        table = next(t for t in tables if t.startswith("m_"))
        assert db.execute(f'select count(*) from "{table}"').fetchone()[0] == 3


def test_users_and_members(cli: Cli, admin: Client, org: str) -> None:
    email = f"{unique('ada')}@example.org"
    password = "correct horse battery staple"
    user = cli.json("users", "create", email, "--password-stdin", input=password + "\n")
    assert (user["email"], user["is_platform_admin"]) == (email, False)
    assert password not in json.dumps(user)

    member = cli.json("orgs", "add-member", org, email, "--role", "admin")
    assert (member["email"], member["role"]) == (email, "admin")
    assert [m["email"] for m in cli.json("orgs", "members", org)] == [email]

    token = admin.users.sign_in(email, password)
    me = cli.json("users", "me", token=token)
    assert me["memberships"] == [{"org": org, "role": "admin"}]
    assert cli.run("users", "me").exit_code == 1  # an API key is no person: 404

    assert cli.json("users", "patch", user["id"], "--disabled")["disabled"] is True
    assert cli.run("users", "me", token=token).exit_code == 1
    assert cli.json("users", "patch", user["id"], "--enabled")["disabled"] is False
    cli.ok("orgs", "remove-member", org, user["id"])
    assert cli.json("orgs", "members", org) == []


def test_plans(cli: Cli, admin: Client, org: str) -> None:
    name = unique("gold")
    plan = cli.json(
        "plans", "create", name, "--rate", "50", "--burst", "100", "--daily-quota", "1000000"
    )
    assert (plan["rate_per_second"], plan["burst"], plan["daily_quota"]) == (50, 100, 1_000_000)
    assert cli.json("plans", "get", name)["monthly_quota"] is None
    assert name in {p["name"] for p in cli.json("plans", "list")}
    patched = cli.json("plans", "patch", name, "--burst", "200", "--no-daily-quota")
    assert (patched["burst"], patched["daily_quota"]) == (200, None)
    app = admin.apps.create(org, unique("planned"))
    assert cli.json("apps", "patch", app.id, "--plan", name)["plan"] == name
    assert cli.run("plans", "delete", name).exit_code == 1  # an app is on it
    cli.ok("apps", "patch", app.id, "--plan", "default")
    cli.ok("plans", "delete", name)
    assert cli.run("plans", "get", name).exit_code == 1


def test_changes(cli: Cli, admin: Client, products: str) -> None:
    feed = cli.json("changes", products)
    assert [(c["seq"], c["op"], c["id"]) for c in feed] == [
        (1, "upsert", "a"),
        (2, "upsert", "b"),
        (3, "upsert", "c"),
    ]
    assert set(feed[0]) == {"seq", "op", "id", "version", "data", "at"}
    later = cli.ok("changes", products, "--after", "1", "--limit", "1", "-o", "ndjson")
    assert [json.loads(line)["id"] for line in later.stdout.splitlines()] == ["b"]

    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    env.update({k: v for k, v in cli.env().items() if v is not None})
    command = ["changes", products, "--after", "3", "--follow", "--wait", "5"]
    with subprocess.Popen(
        [sys.executable, "-m", "entrepot", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as follower:
        assert follower.stdout is not None
        assert follower.stderr is not None
        try:
            admin.records.delete(products, "a")
            line = json.loads(follower.stdout.readline())
            assert (line["seq"], line["op"], line["id"]) == (4, "delete", "a")
        finally:
            follower.send_signal(signal.SIGINT)
            follower.wait(30)
        assert "Traceback" not in follower.stderr.read()

    ahead = cli.run("changes", products, "--after", "999")
    assert ahead.exit_code == 1
    assert "410" in ahead.stderr
    assert "entrepot export" in ahead.stderr
