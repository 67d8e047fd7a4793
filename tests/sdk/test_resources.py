"""Every resource namespace against the real server: orgs, datasets, apps, keys, access
requests and grants (with narrowing), webhooks, audit, usage, plans."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from entrepot.client import (
    AccessRequest,
    Client,
    Conflict,
    Contact,
    Dataset,
    Forbidden,
    Grant,
    NotFound,
    Org,
    Unauthorized,
    WebhookVerificationError,
    verify_webhook,
)
from tests.sdk.conftest import SCHEMA, Receiver, unique
from tests.waiting import wait_until


def test_orgs_create_get_and_list(admin: Client) -> None:
    name = unique("org")
    created = admin.orgs.create(name, "Acme")
    assert isinstance(created, Org)
    assert admin.orgs.get(name) == created
    assert name in {o.name for o in admin.orgs.list(limit=2)}, "followed across pages"
    with pytest.raises(Conflict):
        admin.orgs.create(name, "Again")


def test_datasets_create_get_list_update_delete(admin: Client) -> None:
    org = admin.orgs.create(unique("org"), "Org").name
    name = unique("ds")
    created = admin.datasets.create(
        name, org=org, title="Prices", schema=SCHEMA, primary_key="sku", tags=["retail"]
    )
    assert isinstance(created, Dataset)
    assert (created.primary_key, created.visibility, created.schema_) == (
        "sku",
        "restricted",
        SCHEMA,
    )
    assert [d.name for d in admin.datasets.list(org=org)] == [name]
    assert [d.name for d in admin.datasets.list(org=org, tag="nope")] == []

    updated = admin.datasets.update(name, title="Price list", visibility="public")
    assert (updated.title, updated.visibility) == ("Price list", "public")
    assert admin.datasets.get(name).title == "Price list"

    admin.datasets.delete(name)
    with pytest.raises(NotFound):
        admin.datasets.get(name)


def test_apps_and_keys_secrets_are_shown_once(server: str, admin: Client) -> None:
    org = admin.orgs.create(unique("org"), "Org").name
    app = admin.apps.create(org, "reader", description="Reads", scopes=["datasets:read"])
    assert app.client_secret
    assert "client_secret" not in admin.apps.get(app.id).model_dump()
    assert [a.id for a in admin.apps.list(org=org)] == [app.id]
    assert admin.apps.update(app.id, description="Reads more").description == "Reads more"

    rotated = admin.apps.rotate_secret(app.id)
    assert rotated.client_id == app.client_id
    assert rotated.client_secret != app.client_secret

    key = admin.keys.create(app.id, "ci", expires_at=datetime.now(UTC) + timedelta(days=1))
    with Client(server, key.key) as as_app:
        me = as_app.me()
    assert (me.kind, me.credential.kind, me.credential.id) == ("app", "api_key", key.id)
    assert (me.app and me.app.id, me.scopes) == (app.id, ["datasets:read"])
    assert admin.me().kind == "admin"
    listed = list(admin.keys.list(app.id))
    assert [(k.id, k.prefix) for k in listed] == [(key.id, key.prefix)]
    assert "key" not in listed[0].model_dump()
    replacement = admin.keys.rotate(app.id, key.id, overlap_seconds=0)
    assert replacement.replaces == key.id
    admin.keys.revoke(app.id, replacement.id)
    assert {k.id: k.revoked_at is not None for k in admin.keys.list(app.id)}[replacement.id]

    admin.apps.delete(app.id)
    with pytest.raises(NotFound):
        admin.apps.get(app.id)


def test_access_requests_approved_with_narrowing_and_grants_revoked(
    server: str, admin: Client
) -> None:
    provider = admin.orgs.create(unique("org"), "Provider").name
    ds = admin.datasets.create(unique("ds"), org=provider, title="P", schema=SCHEMA).name
    admin.records.create(ds, {"sku": "cheap", "name": "C", "price": 10, "region": "eu"})
    admin.records.create(ds, {"sku": "dear", "name": "D", "price": 99, "region": "eu"})
    consumer = admin.orgs.create(unique("org"), "Consumer").name
    app = admin.apps.create(consumer, "buyer", scopes=["datasets:read", "records:read"])
    key = admin.keys.create(app.id, "k").key

    with Client(server, key) as buyer:
        with pytest.raises(NotFound):
            buyer.records.list(ds).collect()
        asked = buyer.access_requests.create(
            ds, app=app.id, scopes=["records:read"], reason="Pricing"
        )
        assert isinstance(asked, AccessRequest)
        assert asked.status == "pending"

        pending = admin.access_requests.list(status="pending", dataset=ds)
        assert [r.id for r in pending] == [asked.id]
        approved = admin.access_requests.approve(
            asked.id, note="Cheap ones", fields=["sku", "price"], row_filter={"price": {"lt": 50}}
        )
        assert approved.status == "approved"
        assert approved.grant_id

        assert [r.data for r in buyer.records.list(ds)] == [{"sku": "cheap", "price": 10}]
        grant = admin.grants.get(approved.grant_id)
        assert isinstance(grant, Grant)
        assert (grant.fields, grant.row_filter) == (["sku", "price"], {"price": {"lt": 50}})
        assert [g.id for g in admin.grants.list(app=app.id)] == [grant.id]

        admin.grants.revoke(grant.id)
        with pytest.raises(NotFound):
            buyer.records.list(ds).collect()

        again = buyer.access_requests.create(ds, app=app.id, scopes=["records:read"])
        rejected = admin.access_requests.reject(again.id, note="Not now")
        assert (rejected.status, rejected.note) == ("rejected", "Not now")
        assert buyer.access_requests.get(again.id).status == "rejected"


def test_webhooks_management_and_a_delivery_verified(
    admin: Client, dataset: str, receiver: Receiver
) -> None:
    org = admin.datasets.get(dataset).org
    app = admin.apps.create(org, "hooks", scopes=["changes:read", "webhooks:manage"])
    hook = admin.webhooks.create(app.id, url=receiver.url, datasets=[dataset])
    assert hook.secret.startswith("whsec_")

    created = admin.records.create(dataset, {"sku": "w", "name": "Hooked"})
    [(headers, body)] = receiver.wait_for(1)
    event = verify_webhook(hook.secret, headers, body)
    assert event["type"] == "record.created"
    assert (event["data"]["dataset"], event["data"]["id"]) == (dataset, created.id)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(hook.secret, headers, body.replace(b"Hooked", b"Hacked"))
    # The receiver has the body before the worker records the answer; a retry while
    # the delivery is still in flight is refused (409), so wait for it to finish.
    [delivery] = wait_until(
        lambda: [d for d in admin.webhooks.deliveries(hook.id) if d.status == "delivered"],
        "the delivery is recorded as delivered",
    )
    assert (delivery.record_id, delivery.message_id) == (created.id, headers["webhook-id"])
    assert admin.webhooks.retry_delivery(hook.id, delivery.id).status == "pending"

    assert [w.id for w in admin.webhooks.list(app.id)] == [hook.id]
    assert admin.webhooks.update(hook.id, events=["record.created"]).events == ["record.created"]
    rotated = admin.webhooks.rotate_secret(hook.id, overlap_seconds=60)
    assert rotated.secret != hook.secret
    assert rotated.previous_secret_expires_at is not None
    admin.webhooks.delete(hook.id)
    with pytest.raises(NotFound):
        admin.webhooks.get(hook.id)


def test_audit_lists_mutations_newest_first_across_pages(admin: Client) -> None:
    names = [unique("org") for _ in range(3)]
    for name in names:
        admin.orgs.create(name, "Audited")
    seen = [
        e.target
        for e in admin.audit.list(action="org.created", limit=1)
        if e.target in {f"org:{n}" for n in names}
    ]
    assert seen == [f"org:{n}" for n in reversed(names)]

    out = io.BytesIO()
    written = admin.audit.export(out, action="org.created", target=f"org:{names[0]}")
    [line] = out.getvalue().splitlines()
    assert json.loads(line)["target"] == f"org:{names[0]}"
    assert written.records == 1


def test_usage_counts_an_apps_requests(server: str, admin: Client, dataset: str) -> None:
    org = admin.datasets.get(dataset).org
    app = admin.apps.create(org, "counted", scopes=["datasets:read"])
    with Client(server, admin.keys.create(app.id, "k").key) as counted:
        for _ in range(3):
            counted.datasets.get(dataset)
    usage = admin.apps.usage(app.id, granularity="day")
    assert usage.app == app.id
    assert usage.total >= 3
    assert sum(row.count for row in usage.data if row.status == 200) >= 3


def test_usage_per_dataset_and_a_datasets_licence(admin: Client, server: str) -> None:
    org = admin.orgs.create(unique("org"), "Org").name
    made = admin.datasets.create(
        unique("ds"),
        org=org,
        title="Licensed",
        schema=SCHEMA,
        visibility="public",
        license="CC-BY-4.0",
        contact={"email": "data@example.org"},
    )
    assert (made.license, made.contact) == ("CC-BY-4.0", Contact(email="data@example.org"))
    assert admin.datasets.update(made.name, contact=None).contact is None
    app = admin.apps.create(org, "counted", scopes=["datasets:read"])
    with Client(server, admin.keys.create(app.id, "k").key) as counted:
        counted.datasets.get(made.name)
        counted.datasets.get(made.name)
    mine = admin.apps.usage(app.id, dataset=made.name)
    assert (mine.dataset, mine.total) == (made.name, 2)
    assert {row.dataset for row in mine.data} == {made.name}
    everyone = admin.datasets.usage(made.name, granularity="day")
    assert [(row.app, row.count) for row in everyone.data] == [(app.id, 2)]


def test_plans_are_admin_only(server: str, admin: Client, dataset: str) -> None:
    name = unique("plan").lower()
    plan = admin.plans.create(name, rate_per_second=5, burst=10, daily_quota=1000)
    assert admin.plans.update(name, burst=20).burst == 20
    assert plan.name in {p.name for p in admin.plans.list()}
    org = admin.datasets.get(dataset).org
    app = admin.apps.create(org, "planned")
    with Client(server, admin.keys.create(app.id, "k").key) as user, pytest.raises(Forbidden):
        user.plans.create(unique("plan").lower(), rate_per_second=1, burst=1)
    admin.plans.delete(name)
    with pytest.raises(NotFound):
        admin.plans.get(name)


def test_users_members_and_password_sign_in(server: str, admin: Client) -> None:
    org = admin.orgs.create(unique("org"), "Org").name
    email = f"{unique('user')}@example.org"
    user = admin.users.create(email, "correct horse battery staple")
    member = admin.orgs.add_member(org, email, "admin")
    assert (member.user_id, member.role) == (user.id, "admin")
    assert [m.email for m in admin.orgs.members(org)] == [email]

    token = admin.users.sign_in(email, "correct horse battery staple")
    with Client(server, token) as person:
        me = person.users.me()
        assert me.email == email
        assert [(m.org, m.role) for m in me.memberships] == [(org, "admin")]

    admin.orgs.remove_member(org, user.id)
    assert list(admin.orgs.members(org)) == []
    assert admin.users.update(user.id, disabled=True).disabled
    with Client(server, token) as person, pytest.raises(Unauthorized):
        person.users.me()
