"""Rate limits and quotas per plan, on one replica without Redis (the embedded default)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from entrepot.app import create_app
from entrepot.settings import Settings
from tests.factories import app_on_plan, make_app, make_key, make_org, make_plan

PROBLEM = "application/problem+json"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def get(anon: httpx.AsyncClient, key: str) -> httpx.Response:
    return await anon.get("/v1/datasets", headers=bearer(key))


def seconds_to_midnight() -> float:
    now = datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


async def test_a_burst_is_admitted_with_headers_then_429_with_retry_after(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    plan = await make_plan(client, rate_per_second=0.5, burst=3)
    _, key = await app_on_plan(client, plan)
    for remaining in (2, 1, 0):
        ok = await get(anon, key)
        assert ok.status_code == 200
        assert ok.headers["RateLimit-Limit"] == "3"
        assert ok.headers["RateLimit-Remaining"] == str(remaining)
        assert 1 <= int(ok.headers["RateLimit-Reset"]) <= 6
    refused = await get(anon, key)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("/rate-limited")
    assert plan in refused.json()["detail"]
    assert refused.headers["Retry-After"] == "2"  # one token at 0.5 a second
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert "X-Request-ID" in refused.headers


async def test_the_keys_of_one_app_share_its_bucket(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    plan = await make_plan(client, rate_per_second=0.1, burst=2)
    app_id, first = await app_on_plan(client, plan)
    second = (await make_key(client, app_id))["key"]
    assert (await get(anon, first)).status_code == 200
    assert (await get(anon, second)).status_code == 200
    assert (await get(anon, first)).status_code == 429
    assert (await get(anon, second)).status_code == 429


async def test_one_apps_flood_does_not_limit_another(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    plan = await make_plan(client, rate_per_second=0.1, burst=1)
    _, noisy = await app_on_plan(client, plan)
    _, quiet = await app_on_plan(client, plan)
    await get(anon, noisy)
    assert (await get(anon, noisy)).status_code == 429
    assert (await get(anon, quiet)).status_code == 200


async def test_429s_are_metered_not_audited(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    plan = await make_plan(client, rate_per_second=0.1, burst=1)
    app_id, key = await app_on_plan(client, plan)
    await get(anon, key)
    request_id = f"limited-{uuid.uuid4().hex}"
    refused = await anon.get("/v1/datasets", headers={**bearer(key), "X-Request-ID": request_id})
    assert refused.status_code == 429
    audit = await client.get("/v1/audit", params={"request_id": request_id})
    assert audit.json()["data"] == []
    usage = (await client.get(f"/v1/apps/{app_id}/usage")).json()
    statuses = {(row["endpoint_class"], row["status"]): row["count"] for row in usage["data"]}
    assert statuses == {("datasets", 200): 1, ("datasets", 429): 1}


async def test_a_daily_quota_refuses_until_the_next_utc_day(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    plan = await make_plan(client, rate_per_second=1000, burst=1000, daily_quota=2)
    _, key = await app_on_plan(client, plan)
    assert (await get(anon, key)).status_code == 200
    assert (await get(anon, key)).status_code == 200
    refused = await get(anon, key)
    assert refused.status_code == 429
    assert refused.json()["type"].endswith("/quota-exceeded")
    assert "daily quota of 2" in refused.json()["detail"]
    assert abs(int(refused.headers["Retry-After"]) - seconds_to_midnight()) <= 5
    assert (await get(anon, key)).status_code == 429  # refusals do not count, and do not end


async def test_a_monthly_quota(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    plan = await make_plan(client, rate_per_second=1000, burst=1000, monthly_quota=1)
    _, key = await app_on_plan(client, plan)
    assert (await get(anon, key)).status_code == 200
    refused = await get(anon, key)
    assert refused.status_code == 429
    assert "monthly quota of 1" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) >= seconds_to_midnight() - 5


async def test_quota_use_survives_a_restart_and_is_shared_by_replicas(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Without Redis a replica counts quota from the usage table plus its own admissions."""
    plan = await make_plan(client, rate_per_second=1000, burst=1000, daily_quota=3)
    _, key = await app_on_plan(client, plan)
    for _ in range(2):
        replica = create_app(settings)
        async with replica.router.lifespan_context(replica):
            transport = httpx.ASGITransport(app=replica)
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as c:
                statuses = [(await get(c, key)).status_code for _ in range(2)]
        # The first replica admits two and flushes them on the way out; the next sees them.
        assert statuses in ([200, 200], [200, 429])
    assert statuses == [200, 429]


async def test_a_plan_change_applies_at_once(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    plan = await make_plan(client, rate_per_second=0.1, burst=1)
    _, key = await app_on_plan(client, plan)
    await get(anon, key)
    assert (await get(anon, key)).status_code == 429
    changed = await client.patch(f"/v1/plans/{plan}", json={"rate_per_second": 100, "burst": 50})
    assert changed.status_code == 200
    assert changed.json()["burst"] == 50
    await asyncio.sleep(0.05)  # five tokens at the new rate
    ok = await get(anon, key)
    assert ok.status_code == 200
    assert ok.headers["RateLimit-Limit"] == "50"


async def test_moving_an_app_to_another_plan_applies_at_once(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    tight = await make_plan(client, rate_per_second=0.1, burst=1)
    roomy = await make_plan(client, rate_per_second=1000, burst=500)
    app_id, key = await app_on_plan(client, tight)
    await get(anon, key)
    assert (await get(anon, key)).status_code == 429
    assert (await client.patch(f"/v1/apps/{app_id}", json={"plan": roomy})).status_code == 200
    ok = await get(anon, key)
    assert ok.status_code == 200
    assert ok.headers["RateLimit-Limit"] == "500"


async def test_new_apps_get_the_default_plan_and_admins_are_not_limited(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    app = await make_app(client, org, scopes=["datasets:read"])
    assert app.get("plan", "default") == "default"
    key = (await make_key(client, app["id"]))["key"]
    default = (await client.get("/v1/plans/default")).json()
    response = await get(anon, key)
    assert response.headers["RateLimit-Limit"] == str(default["burst"])
    admin = await client.get("/v1/datasets")
    assert "RateLimit-Limit" not in admin.headers


async def test_only_platform_admins_move_apps_between_plans(client: httpx.AsyncClient) -> None:
    org = (await make_org(client))["name"]
    org_admin = await make_app(client, org, scopes=["admin", "datasets:read"])
    org_admin_key = (await make_key(client, org_admin["id"]))["key"]
    target = await make_app(client, org)
    premium = await make_plan(client, rate_per_second=1000, burst=1000)
    path = f"/v1/apps/{target['id']}"
    refused = await client.patch(path, json={"plan": premium}, headers=bearer(org_admin_key))
    assert refused.status_code == 403
    unknown = await client.patch(path, json={"plan": "no-such-plan"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["path"] == "/plan"
    assert (await client.patch(path, json={"plan": None})).status_code == 422
    assert (await client.get(path)).json()["plan"] == "default"


async def test_plan_lifecycle(client: httpx.AsyncClient) -> None:
    plan = await make_plan(client, rate_per_second=2.5, burst=5, daily_quota=10)
    again = await client.post("/v1/plans", json={"name": plan, "rate_per_second": 1, "burst": 1})
    assert again.status_code == 409
    for bad in (
        {"name": "Gold", "rate_per_second": 1, "burst": 1},
        {"name": "zero", "rate_per_second": 0, "burst": 1},
        {"name": "glacial", "rate_per_second": 1e-9, "burst": 1},
        {"name": "empty", "rate_per_second": 1, "burst": 0},
        {"name": "negative", "rate_per_second": 1, "burst": 1, "daily_quota": -1},
        {"name": "extra", "rate_per_second": 1, "burst": 1, "colour": "gold"},
    ):
        response = await client.post("/v1/plans", json=bad)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == PROBLEM
    listed = await client.get("/v1/plans", params={"limit": "1000"})
    names = [p["name"] for p in listed.json()["data"]]
    assert "default" in names
    assert plan in names
    patched = await client.patch(f"/v1/plans/{plan}", json={"daily_quota": None})
    assert patched.json()["daily_quota"] is None
    assert patched.json()["rate_per_second"] == 2.5
    assert (await client.patch(f"/v1/plans/{plan}", json={"burst": None})).status_code == 422
    app_id, _ = await app_on_plan(client, plan)
    assert (await client.delete(f"/v1/plans/{plan}")).status_code == 409
    assert (await client.delete(f"/v1/apps/{app_id}")).status_code == 204
    assert (await client.delete(f"/v1/plans/{plan}")).status_code == 204
    assert (await client.get(f"/v1/plans/{plan}")).status_code == 404
    assert (await client.delete("/v1/plans/default")).status_code == 409
    audit = await client.get("/v1/audit", params={"target": f"plan:{plan}"})
    actions = sorted(row["action"] for row in audit.json()["data"])
    assert actions == ["plan.created", "plan.deleted", "plan.updated"]


async def test_usage_by_class_status_and_day(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    plan = await make_plan(client, rate_per_second=0.1, burst=3)
    app_id, key = await app_on_plan(client, plan)
    await anon.get("/v1/datasets/no-such-dataset/records", headers=bearer(key))
    await get(anon, key)
    await get(anon, key)
    await get(anon, key)
    own = await anon.get(f"/v1/apps/{app_id}/usage", headers=bearer(key))
    assert own.status_code == 429  # the usage call is itself a request against the plan
    hourly = (await client.get(f"/v1/apps/{app_id}/usage")).json()
    assert hourly["granularity"] == "hour"
    counts = {(r["endpoint_class"], r["status"]): r["count"] for r in hourly["data"]}
    assert counts == {
        ("records.read", 404): 1,
        ("datasets", 200): 2,
        ("datasets", 429): 1,
        ("management", 429): 1,
    }
    assert hourly["total"] == 5
    daily = (await client.get(f"/v1/apps/{app_id}/usage", params={"granularity": "day"})).json()
    assert daily["total"] == 5
    periods = {row["period"] for row in daily["data"]}
    assert len(periods) == 1
    assert next(iter(periods)).startswith(datetime.now(UTC).strftime("%Y-%m-%d"))


async def test_usage_windows_are_checked(client: httpx.AsyncClient) -> None:
    org = (await make_org(client))["name"]
    app = await make_app(client, org)
    path = f"/v1/apps/{app['id']}/usage"
    for params in (
        {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"granularity": "day", "from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"to": "0001-01-01T00:00:00Z"},
        {"granularity": "minute"},
        {"from": "yesterday"},
    ):
        response = await client.get(path, params=params)
        assert 400 <= response.status_code < 500, params
        assert response.headers["content-type"] == PROBLEM
    empty = await client.get(
        path, params={"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    )
    assert empty.status_code == 200
    assert empty.json()["data"] == []
    assert empty.json()["from"] == "2026-01-01T00:00:00Z"
    widened = await client.get(
        path,
        params={"granularity": "day", "from": "2026-01-01T10:30:00Z", "to": "2026-01-02T05:10:00Z"},
    )
    assert (widened.json()["from"], widened.json()["to"]) == (
        "2026-01-01T00:00:00Z",
        "2026-01-03T00:00:00Z",
    )


async def test_token_requests_count_against_the_plan(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    """Each issued token is an audit row: an unlimited token endpoint would bypass plans."""
    plan = await make_plan(client, rate_per_second=0.1, burst=2)
    org = (await make_org(client))["name"]
    app = await make_app(client, org)
    assert (await client.patch(f"/v1/apps/{app['id']}", json={"plan": plan})).status_code == 200
    form = {"grant_type": "client_credentials"}
    auth = (app["client_id"], app["client_secret"])
    first = await anon.post("/oauth/token", data=form, auth=auth)
    assert first.status_code == 200
    assert first.headers["RateLimit-Remaining"] == "1"
    assert (await anon.post("/oauth/token", data=form, auth=auth)).status_code == 200
    refused = await anon.post("/oauth/token", data=form, auth=auth)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    usage = (await client.get(f"/v1/apps/{app['id']}/usage")).json()
    assert {(r["endpoint_class"], r["status"]): r["count"] for r in usage["data"]} == {
        ("other", 200): 2,
        ("other", 429): 1,
    }
