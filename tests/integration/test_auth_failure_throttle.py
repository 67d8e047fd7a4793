"""An address sending bad credentials is cut off before it costs lookups and audit rows."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from entrepot.app import create_app
from entrepot.settings import Settings

BURST = 5
ADDRESSES = (f"203.0.113.{n}" for n in itertools.count(1))


@pytest.fixture
def address() -> str:
    return next(ADDRESSES)


@pytest.fixture
async def strict(settings: Settings, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A replica with a small allowance of failed authentications, called from ``address``."""
    app = create_app(
        settings.model_copy(update={"auth_failures_burst": BURST, "auth_failures_per_second": 0.1})
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(address, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as c:
            yield c


async def audit_actions(database_url: str, request_ids: list[str]) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT action FROM audit_log WHERE request_id = ANY($1::text[])", request_ids
        )
        return [row["action"] for row in rows]
    finally:
        await conn.close()


async def test_a_flood_of_bad_bearers_gets_429s_without_audit_rows(
    strict: httpx.AsyncClient, database_url: str
) -> None:
    run = uuid.uuid4().hex
    ids = [f"flood-{run}-{n}" for n in range(BURST + 3)]
    statuses = []
    for n, request_id in enumerate(ids):
        headers = {"X-Request-ID": request_id}
        if n % 2:  # missing and unknown credentials count alike
            headers["Authorization"] = "Bearer ent_nobody_issued_this_key_" + str(n)
        statuses.append((await strict.get("/v1/apps", headers=headers)).status_code)
    assert statuses == [401] * BURST + [429] * 3
    refused = await strict.get("/v1/apps")
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["Retry-After"]) >= 1
    assert await audit_actions(database_url, ids[:BURST]) == ["auth.failed"] * BURST
    # The 429s are not audited one by one: one row says the throttle engaged.
    assert await audit_actions(database_url, ids[BURST:]) == ["auth.throttled"]


async def test_the_throttle_engaging_is_audited_once(
    strict: httpx.AsyncClient, client: httpx.AsyncClient, address: str
) -> None:
    for _ in range(BURST + 4):
        await strict.get("/v1/apps")
    rows = (await client.get("/v1/audit", params={"action": "auth.throttled"})).json()["data"]
    mine = [row for row in rows if row["target"] == f"ip:{address}"]
    assert len(mine) == 1
    assert mine[0]["outcome"] == "denied"


async def test_valid_cached_credentials_pass_while_the_address_is_throttled(
    strict: httpx.AsyncClient,
) -> None:
    from tests.conftest import ADMIN_TOKEN

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert (await strict.get("/v1/apps", headers=admin)).status_code == 200  # now cached
    for _ in range(BURST + 1):
        await strict.get("/v1/apps")
    assert (await strict.get("/v1/apps")).status_code == 429
    assert (await strict.get("/v1/apps", headers=admin)).status_code == 200


async def test_guessing_client_secrets_is_cut_off_too(strict: httpx.AsyncClient) -> None:
    form = {"grant_type": "client_credentials"}
    statuses = [
        (
            await strict.post("/oauth/token", data=form, auth=("app_nobody", f"guess-{n}"))
        ).status_code
        for n in range(BURST + 2)
    ]
    assert statuses == [401] * BURST + [429] * 2
