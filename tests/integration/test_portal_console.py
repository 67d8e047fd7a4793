"""Webhooks and the admin console over HTTP (issue 11, phase 2): a webhook subscribed
with its secret shown once, its delivery log with retry and replay, paused, rotated and
deleted; the console's health, plans, organisations and people for platform admins,
and a 403 page (audited) for everyone else."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.e2e.test_webhook_delivery import Receiver
from tests.factories import make_app, make_dataset, make_org, unique
from tests.integration.portal_console import Console, console_app, found, page_text, token_of
from tests.integration.portal_helpers import PASSWORD, make_person
from tests.waiting import until

HOOK_SCOPES = ["datasets:read", "records:read", "changes:read", "webhooks:manage"]
CONSOLE = ("/portal/admin", "/portal/admin/plans", "/portal/admin/orgs", "/portal/admin/users")


@pytest.fixture(scope="module")
async def console(fresh_database: Callable[[], Awaitable[str]]) -> AsyncIterator[Console]:
    async with console_app(fresh_database) as made:
        yield made


@pytest.fixture
def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def _received(receiver: Receiver, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(receiver.snapshot()) >= count

    return check


async def test_a_webhook_is_managed_from_the_portal(console: Console, receiver: Receiver) -> None:
    org = (await make_org(console.admin))["name"]
    ds = (await make_dataset(console.admin, org, primary_key="sku"))["name"]
    app = await make_app(console.admin, org, scopes=HOOK_SCOPES)
    owner = await make_person(console.admin, org)
    async with console.browser(owner) as browser:
        listed = await browser.get("/portal/webhooks")
        assert listed.status_code == 200, listed.text
        token = csrf_of_page = await token_of(browser, "/portal/webhooks")
        refused = await browser.post(
            "/portal/webhooks",
            data={
                "csrf_token": token,
                "app": app["id"],
                "url": "http://10.1.2.3/x",
                "datasets": ds,
            },
        )
        assert refused.status_code == 422
        assert "The webhook URL is refused" in refused.text
        unknown = await browser.post(
            "/portal/webhooks",
            data={"csrf_token": token, "app": app["id"], "url": receiver.url, "datasets": "nope"},
        )
        assert unknown.status_code == 422
        assert "cannot read its changes" in page_text(unknown.text)

        made = await browser.post(
            "/portal/webhooks",
            data={
                "csrf_token": csrf_of_page,
                "app": app["id"],
                "url": receiver.url,
                "datasets": ds,
                "events": ["record.created", "record.updated"],
            },
        )
        assert made.status_code == 201, made.text
        secret = found(r'value="(whsec_[^"]+)"', made.text)
        assert "shown only on this page" in made.text
        hook = found(r'href="/portal/webhooks/([0-9a-f-]{36})"', made.text)
        receiver.secrets.append(secret)

        put = await console.admin.put(
            f"/v1/datasets/{ds}/records/w-1", json={"sku": "w-1", "name": "Widget", "price": 2}
        )
        assert put.status_code == 201, put.text
        await until(_received(receiver, 1), "the first delivery")
        assert receiver.snapshot()[0].verified

        async def delivered() -> bool:
            # The state's badge in the log, not the status filter's option of that name
            # (which every page has: a check on ">delivered<" passed at once).
            page = (await browser.get(f"/portal/webhooks/{hook}")).text
            return 'class="badge approved">delivered</span>' in page

        await until(delivered, "the delivery log says delivered")
        detail = await browser.get(f"/portal/webhooks/{hook}")
        assert secret not in detail.text  # shown once
        assert secret not in (await browser.get("/portal/webhooks")).text
        delivery = found(r"/deliveries/([0-9a-f-]{36})/retry", detail.text)

        retried = await browser.post(
            f"/portal/webhooks/{hook}/deliveries/{delivery}/retry", data={"csrf_token": token}
        )
        assert retried.status_code == 303, retried.text
        await until(_received(receiver, 2), "the retried delivery")
        replayed = await browser.post(
            f"/portal/webhooks/{hook}/replay",
            data={"csrf_token": token, "dataset": ds, "from_seq": "1"},
        )
        assert replayed.status_code == 200, replayed.text
        assert "queued again" in replayed.text
        bad_replay = await browser.post(
            f"/portal/webhooks/{hook}/replay",
            data={"csrf_token": token, "dataset": ds, "from_seq": "zero"},
        )
        assert bad_replay.status_code == 422
        only_failed = await browser.get(f"/portal/webhooks/{hook}", params={"status": "failed"})
        assert "No delivery yet in state failed" in only_failed.text

        rotated = await browser.post(
            f"/portal/webhooks/{hook}/rotate-secret",
            data={"csrf_token": token, "overlap_seconds": "60"},
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = found(r'value="(whsec_[^"]+)"', rotated.text)
        assert new_secret != secret
        assert "also signs deliveries until" in rotated.text
        assert new_secret not in (await browser.get(f"/portal/webhooks/{hook}")).text
        too_long = await browser.post(
            f"/portal/webhooks/{hook}/rotate-secret",
            data={"csrf_token": token, "overlap_seconds": str(10**9)},
        )
        assert too_long.status_code == 422

        paused = await browser.post(
            f"/portal/webhooks/{hook}/state", data={"csrf_token": token, "state": "paused"}
        )
        assert paused.status_code == 303
        assert "The webhook is paused" in (await browser.get(paused.headers["location"])).text
        resumed = await browser.post(
            f"/portal/webhooks/{hook}/state", data={"csrf_token": token, "state": "active"}
        )
        assert resumed.status_code == 303
        deleted = await browser.post(f"/portal/webhooks/{hook}/delete", data={"csrf_token": token})
        assert deleted.status_code == 303
        assert (await browser.get(f"/portal/webhooks/{hook}")).status_code == 404
    audit = await console.admin.get("/v1/audit", params={"target": f"webhook:{hook}"})
    actions = {e["action"] for e in audit.json()["data"]}
    assert {
        "webhook.created",
        "webhook.delivery_retried",
        "webhook.replayed",
        "webhook.secret_rotated",
        "webhook.updated",
        "webhook.deleted",
    } <= actions


async def test_someone_elses_webhook_is_not_found(console: Console, receiver: Receiver) -> None:
    org = (await make_org(console.admin))["name"]
    ds = (await make_dataset(console.admin, org, primary_key="sku"))["name"]
    app = await make_app(console.admin, org, scopes=HOOK_SCOPES)
    made = await console.admin.post(
        f"/v1/apps/{app['id']}/webhooks", json={"url": receiver.url, "datasets": [ds]}
    )
    hook = made.json()["id"]
    stranger = await make_person(console.admin, (await make_org(console.admin))["name"])
    async with console.browser(stranger) as browser:
        assert (await browser.get(f"/portal/webhooks/{hook}")).status_code == 404
        token = await token_of(browser)
        for action in ("delete", "rotate-secret", "state"):
            answer = await browser.post(
                f"/portal/webhooks/{hook}/{action}", data={"csrf_token": token}
            )
            assert answer.status_code == 404, action
        theirs = await browser.post(
            "/portal/webhooks",
            data={"csrf_token": token, "app": app["id"], "url": receiver.url, "datasets": ds},
        )
        assert theirs.status_code == 404
        assert "does not exist or is not visible to you" in theirs.text
    assert (await console.admin.get(f"/v1/webhooks/{hook}")).status_code == 200


async def test_the_console_is_for_platform_admins_only(console: Console) -> None:
    org = (await make_org(console.admin))["name"]
    owner = await make_person(console.admin, org)
    async with console.browser(owner) as browser:
        home = await browser.get("/portal/")
        assert "/portal/admin" not in home.text  # not in the navigation either
        token = await token_of(browser)
        for path in CONSOLE:
            refused = await browser.get(path)
            assert refused.status_code == 403, path
            assert "Only platform administrators" in refused.text
        for path in ("/portal/admin/plans", "/portal/admin/orgs", "/portal/admin/users"):
            posted = await browser.post(path, data={"csrf_token": token, "name": unique("x")})
            assert posted.status_code == 403, path
    who = await console.admin.get("/v1/audit", params={"action": "access.denied", "limit": 500})
    denied = {e["target"] for e in who.json()["data"] if e["actor"].startswith("user:")}
    assert set(CONSOLE) <= denied


async def test_an_admin_runs_the_platform_from_the_console(console: Console) -> None:
    org = (await make_org(console.admin))["name"]
    admin = await make_person(console.admin, org, is_platform_admin=True)
    app = await make_app(console.admin, org)
    async with console.browser(admin) as browser:
        health = await browser.get("/portal/admin")
        assert health.status_code == 200, health.text
        text = page_text(health.text)
        assert "This replica is ready" in text
        assert "Store (PostgreSQL) ok" in text
        assert "Webhook deliveries ok" in text  # the readiness check /readyz makes
        processes = int(found(r'<dd id="processes">(\d+)</dd>', health.text))
        assert processes >= 1  # this app's own listener, as PostgreSQL sees it
        ready = await console.admin.get("/readyz")
        assert set(ready.json()["checks"]) <= set(re.findall(r"<dt>([^<]+)</dt>", health.text)) | {
            "draining",
            "store",
            "webhooks",
            "redis",
        }

        plans = await browser.get("/portal/admin/plans")
        assert "<code>default</code>" in plans.text
        token = csrf_of_plans = await token_of(browser, "/portal/admin/plans")
        plan = unique("gold")
        bad = await browser.post(
            "/portal/admin/plans",
            data={"csrf_token": token, "name": plan, "rate_per_second": "-1", "burst": "5"},
        )
        assert bad.status_code == 422
        assert 'id="e-rate_per_second"' in bad.text
        made = await browser.post(
            "/portal/admin/plans",
            data={
                "csrf_token": csrf_of_plans,
                "name": plan,
                "rate_per_second": "5",
                "burst": "10",
                "daily_quota": "1000",
                "monthly_quota": "",
            },
        )
        assert made.status_code == 303, made.text
        again = await browser.post(
            "/portal/admin/plans",
            data={"csrf_token": token, "name": plan, "rate_per_second": "5", "burst": "10"},
        )
        assert again.status_code == 409
        moved = await browser.post(
            "/portal/admin/plans/assign", data={"csrf_token": token, "app": app["id"], "plan": plan}
        )
        assert moved.status_code == 303, moved.text
        assert (await console.admin.get(f"/v1/apps/{app['id']}")).json()["plan"] == plan
        nowhere = await browser.post(
            "/portal/admin/plans/assign",
            data={"csrf_token": token, "app": app["id"], "plan": "no-such-plan"},
        )
        assert nowhere.status_code == 422

        new_org = unique("org")
        created = await browser.post(
            "/portal/admin/orgs", data={"csrf_token": token, "name": new_org, "title": "New"}
        )
        assert created.status_code == 303, created.text
        assert new_org in (await browser.get("/portal/admin/orgs")).text
        clash = await browser.post(
            "/portal/admin/orgs", data={"csrf_token": token, "name": new_org, "title": "New"}
        )
        assert clash.status_code == 409

        email = f"{unique('someone')}@example.test"
        short = await browser.post(
            "/portal/admin/users", data={"csrf_token": token, "email": email, "password": "short"}
        )
        assert short.status_code == 422
        person = await browser.post(
            "/portal/admin/users", data={"csrf_token": token, "email": email, "password": PASSWORD}
        )
        assert person.status_code == 303, person.text
        people = await browser.get("/portal/admin/users")
        assert email in people.text
        member = await browser.post(
            "/portal/admin/members",
            data={"csrf_token": token, "email": email, "org": new_org, "role": "admin"},
        )
        assert member.status_code == 303, member.text
        members = await console.admin.get(f"/v1/orgs/{new_org}/members")
        assert [(m["email"], m["role"]) for m in members.json()["data"]] == [(email, "admin")]
        user_id = found(
            rf"<td>{re.escape(email)}</td>.*?/portal/admin/users/([0-9a-f-]{{36}})/state",
            people.text.replace("\n", " "),
        )
        disabled = await browser.post(
            f"/portal/admin/users/{user_id}/state", data={"csrf_token": token, "state": "disabled"}
        )
        assert disabled.status_code == 303
    async with console.browser() as anyone:
        page = await anyone.get("/portal/sign-in")
        signed = await anyone.post(
            "/portal/sign-in",
            data={
                "csrf_token": found(r'name="csrf_token" value="([^"]+)"', page.text),
                "email": email,
                "password": PASSWORD,
            },
        )
        assert signed.status_code == 401  # a disabled account signs in no more
