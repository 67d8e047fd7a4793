"""The portal's people pages over HTTP, as a browser without JavaScript uses them:
sign-in, its cookie, session fixation, CSRF, sign-out, password change, org switcher
and the first-run set-up (issue 11)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from entrepot.settings import Settings
from tests.conftest import app_and_client
from tests.factories import make_org, unique
from tests.integration.portal_helpers import (
    COOKIE,
    PASSWORD,
    csrf_of,
    make_person,
    post_form,
    sign_in,
)

BASE = "http://testserver"


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own: its own cookies, no bearer."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


async def test_a_person_signs_in_with_email_and_password(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    email = await make_person(client, org)
    await sign_in(browser, email)
    home = await browser.get("/portal/")
    assert home.status_code == 200
    assert email in home.text
    assert "Sign out" in home.text


async def test_the_session_cookie_is_httponly_samesite_and_scoped_to_the_portal(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    email = await make_person(client)
    form = await browser.get("/portal/sign-in")
    answer = await browser.post(
        "/portal/sign-in",
        data={"csrf_token": csrf_of(form.text), "email": email, "password": PASSWORD},
    )
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "Path=/portal" in cookie
    assert "SameSite=lax" in cookie
    assert "secure" not in attributes  # plain HTTP here; see the TLS test below


async def test_cookies_are_secure_behind_tls(client: httpx.AsyncClient, app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    ) as tls:
        shown = await tls.get("/portal/sign-in")
    assert "Secure" in shown.headers["set-cookie"]


async def test_signing_in_replaces_the_cookie_the_browser_had(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    """Session fixation: a token planted before sign-in never becomes the session."""
    email = await make_person(client)
    form = await browser.get("/portal/sign-in")
    planted = browser.cookies[COOKIE]
    done = await browser.post(
        "/portal/sign-in",
        data={"csrf_token": csrf_of(form.text), "email": email, "password": PASSWORD},
    )
    assert done.status_code == 303
    signed_in = browser.cookies[COOKIE]
    assert signed_in != planted
    # The planted token signs no one in.
    async with httpx.AsyncClient(
        transport=browser._transport, base_url=BASE, cookies={COOKIE: planted}
    ) as attacker:
        assert (await attacker.get("/portal/")).status_code == 303


async def test_a_wrong_password_is_shown_in_the_page(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    email = await make_person(client)
    answer = await post_form(
        browser, "/portal/sign-in", "/portal/sign-in", {"email": email, "password": "nope"}
    )
    assert answer.status_code == 401
    assert "The email or password is incorrect" in answer.text
    assert 'role="alert"' in answer.text


async def test_a_form_without_its_csrf_token_is_refused_and_audited(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    email = await make_person(client, org)
    await sign_in(browser, email)
    missing = await browser.post("/portal/sign-out", data={})
    assert missing.status_code == 403
    assert "did not come from this site" in missing.text
    wrong = await browser.post("/portal/sign-out", data={"csrf_token": "x" * 43})
    assert wrong.status_code == 403
    assert (await browser.get("/portal/")).status_code == 200  # still signed in
    audit = await client.get("/v1/audit", params={"action": "access.denied", "limit": 100})
    refused = [
        row
        for row in audit.json()["data"]
        if row["target"] == "/portal/sign-out" and row["actor"].startswith("user:")
    ]
    assert len(refused) >= 2
    assert all(row["status"] == 403 for row in refused)


async def test_a_csrf_token_of_another_browser_is_refused(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await make_person(client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as other:
        theirs = csrf_of((await other.get("/portal/sign-in")).text)
    await browser.get("/portal/sign-in")
    answer = await browser.post(
        "/portal/sign-in", data={"csrf_token": theirs, "email": email, "password": PASSWORD}
    )
    assert answer.status_code == 403
    assert "Max-Age" not in answer.headers.get("set-cookie", "")  # no session was opened


async def test_signing_out_ends_the_session(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    email = await make_person(client)
    await sign_in(browser, email)
    session = browser.cookies[COOKIE]
    out = await post_form(browser, "/portal/", "/portal/sign-out", {})
    assert out.status_code == 303
    assert browser.cookies[COOKIE] != session
    assert (await browser.get("/portal/")).status_code == 303
    async with httpx.AsyncClient(
        transport=browser._transport, base_url=BASE, cookies={COOKIE: session}
    ) as replay:
        assert (await replay.get("/portal/")).status_code == 303


async def test_a_password_change_signs_the_other_browsers_out(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await make_person(client)
    await sign_in(browser, email)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as other:
        await sign_in(other, email)
        wrong = await post_form(
            browser,
            "/portal/account",
            "/portal/account/password",
            {
                "current_password": "not it",
                "new_password": "another long password",
                "new_password_again": "another long password",
            },
        )
        assert wrong.status_code == 422
        assert 'id="e-current_password"' in wrong.text
        changed = await post_form(
            browser,
            "/portal/account",
            "/portal/account/password",
            {
                "current_password": PASSWORD,
                "new_password": "another long password",
                "new_password_again": "another long password",
            },
        )
        assert changed.status_code == 200, changed.text
        assert "Your password is changed" in changed.text
        assert (await other.get("/portal/")).status_code == 303
    assert (await browser.get("/portal/")).status_code == 200
    token = await client.post(
        "/v1/auth/token", json={"email": email, "password": "another long password"}
    )
    assert token.status_code == 200


async def test_a_member_of_two_orgs_switches_between_them(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    first = (await make_org(client, "a-" + unique("org")))["name"]
    second = (await make_org(client, "b-" + unique("org")))["name"]
    email = await make_person(client, first, role="member")
    added = await client.post(f"/v1/orgs/{second}/members", json={"email": email, "role": "admin"})
    assert added.status_code == 201
    await sign_in(browser, email)
    home = await browser.get("/portal/")
    assert 'id="org-switch"' in home.text
    assert "as member" in home.text
    switched = await browser.post(
        "/portal/org", data={"csrf_token": csrf_of(home.text), "org": second, "back": "/portal/"}
    )
    assert switched.status_code == 303
    assert "as admin" in (await browser.get("/portal/")).text
    refused = await browser.post(
        "/portal/org", data={"csrf_token": csrf_of(home.text), "org": "not-mine"}
    )
    assert refused.status_code == 422


async def test_the_sign_in_page_sends_back_only_to_portal_pages(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    email = await make_person(client)
    for wanted, expected in (
        ("/portal/account", "/portal/account"),
        ("https://evil.example/", "/portal/"),
        ("//evil.example/portal/", "/portal/"),
    ):
        await browser.get("/portal/sign-in")
        answer = await post_form(
            browser,
            f"/portal/sign-in?next={wanted}",
            "/portal/sign-in",
            {"email": email, "password": PASSWORD, "next": wanted},
        )
        assert answer.headers["location"] == expected
        browser.cookies.clear()


async def test_every_page_has_the_security_headers(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/portal/sign-in")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    css = await browser.get(page.text.split('href="', 2)[1].split('"')[0])
    assert css.status_code == 200
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_first_run_set_up_works_once_on_an_empty_platform(
    fresh_database: object,
) -> None:
    from entrepot.store.migrate import migrate

    url: str = await fresh_database()  # type: ignore[operator]
    await migrate(url)
    settings = Settings(database_url=url, log_level="warning")
    async with app_and_client(settings) as (application, _):
        transport = httpx.ASGITransport(app=application)
        async with (
            httpx.AsyncClient(transport=transport, base_url=BASE) as first,
            httpx.AsyncClient(transport=transport, base_url=BASE) as second,
        ):
            assert (await first.get("/portal/sign-in")).headers["location"] == "/portal/setup"
            forms = [await b.get("/portal/setup") for b in (first, second)]
            fields = {
                "email": "founder@example.test",
                "password": PASSWORD,
                "password_again": PASSWORD,
                "org": "founders",
                "org_title": "Founders",
            }
            answers = await asyncio.gather(
                *(
                    b.post("/portal/setup", data={"csrf_token": csrf_of(f.text), **fields})
                    for b, f in zip((first, second), forms, strict=True)
                )
            )
            assert sorted(a.status_code for a in answers) == [303, 409]
            winner = first if answers[0].status_code == 303 else second
            assert "founder@example.test" in (await winner.get("/portal/")).text
            loser = second if winner is first else first
            assert (await loser.get("/portal/setup")).headers["location"] == "/portal/sign-in"
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users") == 1
        assert await conn.fetchval("SELECT is_platform_admin FROM users") is True
        role = await conn.fetchval("SELECT role FROM org_members")
        assert role == "owner"
    finally:
        await conn.close()


async def test_a_disabled_person_is_signed_out_at_once(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    email = await make_person(client)
    await sign_in(browser, email)
    token = await client.post("/v1/auth/token", json={"email": email, "password": PASSWORD})
    whoami = await client.get(
        "/v1/users/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    disabled = await client.patch(f"/v1/users/{whoami.json()['id']}", json={"disabled": True})
    assert disabled.status_code == 200
    assert (await browser.get("/portal/")).status_code == 303


async def test_failed_sign_ins_are_throttled_as_for_the_api(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    email = await make_person(client)
    statuses = []
    for _ in range(12):  # ENTREPOT_SIGN_IN_FAILURES_BURST is 10
        answer = await post_form(
            browser, "/portal/sign-in", "/portal/sign-in", {"email": email, "password": "wrong"}
        )
        statuses.append(answer.status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    assert "Too many failed sign-ins" in answer.text
