"""Password guessing: each account has a few free failures, then waits between tries."""

from __future__ import annotations

import httpx

from entrepot.settings import Settings
from tests.integration.test_users import PASSWORD, email, make_user


async def attempt(anon: httpx.AsyncClient, address: str, password: str) -> httpx.Response:
    return await anon.post("/v1/auth/token", json={"email": address, "password": password})


async def test_after_the_free_failures_even_the_right_password_waits(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(client)
    for _ in range(settings.sign_in_failures_burst):
        assert (await attempt(anon, user["email"], "wrong guess")).status_code == 401
    refused = await attempt(anon, user["email"].upper(), PASSWORD)  # case does not escape it
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/rate-limited")
    wait = 60 / settings.sign_in_failures_per_minute
    assert 1 <= int(refused.headers["Retry-After"]) <= wait + 1
    other = await make_user(client)
    assert (await attempt(anon, other["email"], PASSWORD)).status_code == 200
    await attempt(anon, user["email"], PASSWORD)  # refused again: no second audit row yet
    rows = (await client.get("/v1/audit", params={"action": "auth.sign_in_throttled"})).json()
    mine = [row for row in rows["data"] if row["details"]["email"] == user["email"]]
    assert len(mine) == 1
    assert mine[0]["outcome"] == "denied"


async def test_successful_sign_ins_are_never_slowed(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(client)
    for _ in range(settings.sign_in_failures_burst + 3):
        assert (await attempt(anon, user["email"], PASSWORD)).status_code == 200


async def test_unknown_emails_are_throttled_alike(
    anon: httpx.AsyncClient, settings: Settings
) -> None:
    """Otherwise the 429 would tell registered addresses from unknown ones."""
    nobody = email()
    for _ in range(settings.sign_in_failures_burst):
        assert (await attempt(anon, nobody, "guess")).status_code == 401
    assert (await attempt(anon, nobody, "guess")).status_code == 429
