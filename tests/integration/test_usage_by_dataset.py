"""Usage per app and per dataset (issue 11): an app's report says which dataset each
request named, and a provider reads every app's requests to its dataset."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import make_app, make_dataset, make_key, make_org

READER = ["datasets:read", "records:read"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def counts(report: dict[str, Any], *keys: str) -> dict[tuple[Any, ...], int]:
    return {tuple(row[k] for k in keys): row["count"] for row in report["data"]}


async def consumer(client: httpx.AsyncClient) -> tuple[str, str]:
    """A fresh app of a fresh organisation reading public datasets: its id and key."""
    org = (await make_org(client))["name"]
    app = await make_app(client, org, scopes=READER)
    return app["id"], (await make_key(client, app["id"]))["key"]


async def test_an_apps_report_names_the_dataset_of_each_request(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    provider = (await make_org(client))["name"]
    a = (await make_dataset(client, org=provider))["name"]
    b = (await make_dataset(client, org=provider))["name"]
    app_id, key = await consumer(client)
    for path in (
        f"/v1/datasets/{a}/records",
        f"/v1/datasets/{a}/records",
        f"/v1/datasets/{a}",
        f"/v1/datasets/{b}/records",
        "/v1/datasets/no-such-dataset/records",  # no dataset by that name: counted as none
        "/v1/datasets/" + "x" * 200 + "/records",
        "/v1/me",
    ):
        await anon.get(path, headers=bearer(key))

    report = (await client.get(f"/v1/apps/{app_id}/usage")).json()
    assert report["dataset"] is None
    assert counts(report, "endpoint_class", "status", "dataset") == {
        ("records.read", 200, a): 2,
        ("datasets", 200, a): 1,
        ("records.read", 200, b): 1,
        ("records.read", 404, None): 2,
        ("management", 200, None): 1,
    }
    assert report["total"] == 7

    only_a = await client.get(f"/v1/apps/{app_id}/usage", params={"dataset": a})
    assert only_a.status_code == 200, only_a.text
    assert only_a.json()["dataset"] == a
    assert {row["dataset"] for row in only_a.json()["data"]} == {a}
    assert only_a.json()["total"] == 3
    day = await client.get(f"/v1/apps/{app_id}/usage", params={"dataset": a, "granularity": "day"})
    assert counts(day.json(), "endpoint_class", "dataset") == {
        ("records.read", a): 2,
        ("datasets", a): 1,
    }

    none = await client.get(f"/v1/apps/{app_id}/usage", params={"dataset": "no-such-dataset"})
    assert (none.json()["data"], none.json()["total"]) == ([], 0)
    too_long = await client.get(f"/v1/apps/{app_id}/usage", params={"dataset": "x" * 65})
    assert too_long.status_code == 400
    assert [e["path"] for e in too_long.json()["errors"]] == ["query:dataset"]


async def test_a_provider_reads_every_apps_requests_to_its_dataset(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    provider = (await make_org(client))["name"]
    owner = await make_app(client, provider, scopes=["admin"])
    owner_key = (await make_key(client, owner["id"]))["key"]
    ds = (await make_dataset(client, org=provider))["name"]
    other = (await make_dataset(client, org=provider))["name"]
    first, first_key = await consumer(client)
    second, second_key = await consumer(client)
    for key, times in ((first_key, 3), (second_key, 1)):
        for _ in range(times):
            await anon.get(f"/v1/datasets/{ds}/records", headers=bearer(key))
    await anon.get(f"/v1/datasets/{other}/records", headers=bearer(first_key))

    seen = await anon.get(f"/v1/datasets/{ds}/usage", headers=bearer(owner_key))
    assert seen.status_code == 200, seen.text
    report = seen.json()
    assert report["dataset"] == ds
    assert counts(report, "app", "endpoint_class", "status") == {
        (first, "records.read", 200): 3,
        (second, "records.read", 200): 1,
    }
    assert report["total"] == 4
    by_day = await anon.get(
        f"/v1/datasets/{ds}/usage", params={"granularity": "day"}, headers=bearer(owner_key)
    )
    # The first report call was a request to the dataset too: the provider's own app's.
    assert counts(by_day.json(), "app", "endpoint_class") == {
        (first, "records.read"): 3,
        (second, "records.read"): 1,
        (owner["id"], "datasets"): 1,
    }

    # A consumer sees the public dataset but not who else uses it.
    refused = await anon.get(f"/v1/datasets/{ds}/usage", headers=bearer(first_key))
    assert refused.status_code == 403
    assert (await anon.get(f"/v1/apps/{first}/usage", headers=bearer(first_key))).json()[
        "total"
    ] >= 4
    hidden = (await make_dataset(client, org=provider, visibility="restricted"))["name"]
    assert (
        await anon.get(f"/v1/datasets/{hidden}/usage", headers=bearer(first_key))
    ).status_code == 404
    bad = await client.get(f"/v1/datasets/{ds}/usage", params={"granularity": "minute"})
    assert bad.status_code == 400
