"""A 403 for want of a scope names it in ``required_scope``, whichever check refused:
the credential's own scopes, or the caller's access to the dataset."""

from __future__ import annotations

import httpx

from tests.factories import app_key, make_dataset, make_org


async def test_a_credential_without_the_scope_is_told_which(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    key = await app_key(client, org, ["records:read"])
    refused = await anon.get("/v1/datasets", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["required_scope"] == "datasets:read"
    assert problem["detail"] == "This credential lacks the 'datasets:read' scope."


async def test_access_to_a_dataset_without_the_scope_is_told_which(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    ds = (await make_dataset(client, org))["name"]
    key = await app_key(client, org, ["datasets:read", "records:read"])
    refused = await anon.post(
        f"/v1/datasets/{ds}/records",
        json={"sku": "a", "name": "A", "price": 1},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["required_scope"] == "records:write"
    assert problem["detail"] == f"Your access to {ds!r} does not include 'records:write'."


async def test_other_refusals_name_no_scope(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    key = await app_key(client, org, ["datasets:read"])
    refused = await anon.post(
        "/v1/plans",
        json={"name": "nope", "rate_per_second": 1, "burst": 1},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 403, refused.text
    assert "required_scope" not in refused.json()
