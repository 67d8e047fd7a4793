"""The change feed through a narrowed grant: the grantee's window, and only it.

A provider publishes a restricted dataset; a consumer's app is granted
``changes:read`` on the fields ``sku`` and ``name`` of the rows whose price is
below 100. In its feed hidden fields never appear, a record that leaves the
window arrives as a delete (data null, never the data that took it out), one
that enters arrives as an upsert, and a record that was never in the window,
or a change to hidden fields only, does not arrive at all. Without
``changes:read`` the feed is forbidden; without a grant the dataset does not
exist.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.test_access_requests import (
    READ,
    Party,
    approve,
    auth,
    eventually,
    party,
    pending_request,
    restricted_dataset,
)

HIDDEN_MARKER = "hidden-region-7f3a"


async def grant(
    client: httpx.AsyncClient, provider: Party, consumer: Party, ds: str, **narrowing: Any
) -> str:
    request_id = await pending_request(client, consumer, ds)
    approved = await approve(client, provider.admin_key, request_id, **narrowing)
    assert approved.status_code == 200, approved.text
    return str(approved.json()["grant_id"])


async def feed(client: httpx.AsyncClient, key: str, ds: str, after: int = 0) -> httpx.Response:
    return await client.get(
        f"/v1/datasets/{ds}/changes", params={"after": after}, headers=auth(key)
    )


def summary(changes: list[dict[str, Any]]) -> list[tuple[int, str, str, Any]]:
    return [(c["seq"], c["op"], c["id"], c["data"]) for c in changes]


async def test_a_narrowed_grantee_sees_its_window_of_the_feed(client: httpx.AsyncClient) -> None:
    provider, consumer = await party(client), await party(client)
    ds = await restricted_dataset(client, provider.org)  # a: 10, b: 60, c: 120 (seqs 1-3)
    await grant(
        client, provider, consumer, ds, scopes=READ, fields=["sku", "name"],
        row_filter={"price": {"lt": 100}},
    )  # fmt: skip
    url = f"/v1/datasets/{ds}/records"

    async def put(sku: str, price: int, name: str | None = None) -> None:
        body = {"sku": sku, "name": name or f"item {sku}", "price": price}
        response = await client.put(f"{url}/{sku}", json={**body, "region": HIDDEN_MARKER})
        assert response.status_code == 200, response.text

    await put("b", 150)  # 4: b leaves the window
    await put("c", 20)  # 5: c enters it
    await put("a", 11, name="renamed")  # 6: a changes inside it
    await put("b", 160)  # 7: b changes outside it
    assert (await client.delete(f"{url}/a")).status_code == 204  # 8
    await put("c", 21)  # 9: c changes inside it, in a hidden field only

    response = await feed(client, consumer.app_key, ds)
    assert response.status_code == 200, response.text
    assert HIDDEN_MARKER not in response.text
    assert "price" not in response.text
    assert "region" not in response.text
    page = response.json()
    assert summary(page["changes"]) == [
        (1, "upsert", "a", {"sku": "a", "name": "item a"}),
        (2, "upsert", "b", {"sku": "b", "name": "item b"}),
        # 3: c created outside the window: nothing, not even its id
        (4, "delete", "b", None),  # left the window
        (5, "upsert", "c", {"sku": "c", "name": "item c"}),  # entered it
        (6, "upsert", "a", {"sku": "a", "name": "renamed"}),
        # 7: b changed while outside: nothing
        (8, "delete", "a", None),
        # 9: only hidden fields of c changed: nothing
    ]
    assert page["last_seq"] == 9  # the reader resumes after what it was not shown
    assert (await feed(client, consumer.app_key, ds, after=8)).json()["changes"] == []
    # Versions and times are the real ones: the feed is the same log, seen narrowly.
    full = (await client.get(f"/v1/datasets/{ds}/changes")).json()["changes"]
    shown = {c["seq"] for c in page["changes"]}
    assert [(c["version"], c["at"]) for c in page["changes"]] == [
        (c["version"], c["at"]) for c in full if c["seq"] in shown
    ]

    # Replaying the narrowed feed gives exactly what the grantee can list.
    mirror: dict[str, Any] = {}
    for change in page["changes"]:
        if change["op"] == "delete":
            mirror.pop(change["id"], None)
        else:
            mirror[change["id"]] = change["data"]
    listed = await client.get(url, headers=auth(consumer.app_key))
    assert listed.status_code == 200, listed.text
    assert mirror == {r["id"]: r["data"] for r in listed.json()["data"]}
    assert mirror == {"c": {"sku": "c", "name": "item c"}}


async def test_the_feed_needs_the_changes_read_scope(client: httpx.AsyncClient) -> None:
    provider, consumer = await party(client), await party(client)
    ds = await restricted_dataset(client, provider.org)
    await grant(client, provider, consumer, ds, scopes=["datasets:read", "records:read"])
    assert (
        await client.get(f"/v1/datasets/{ds}/records/a", headers=auth(consumer.app_key))
    ).status_code == 200
    for accept in ("application/json", "text/event-stream"):
        response = await client.get(
            f"/v1/datasets/{ds}/changes", headers={**auth(consumer.app_key), "Accept": accept}
        )
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "changes:read" in response.json()["detail"]


async def test_without_a_grant_the_feed_does_not_exist(client: httpx.AsyncClient) -> None:
    provider, consumer = await party(client), await party(client)
    ds = await restricted_dataset(client, provider.org)
    missing = await feed(client, consumer.app_key, "no-such-dataset")
    for accept in ("application/json", "text/event-stream"):
        response = await client.get(
            f"/v1/datasets/{ds}/changes", headers={**auth(consumer.app_key), "Accept": accept}
        )
        assert response.status_code == 404, response.text
        assert response.json()["detail"].replace(ds, "X") == missing.json()["detail"].replace(
            "no-such-dataset", "X"
        )

    # Granted, then revoked: back to not existing.
    grant_id = await grant(client, provider, consumer, ds)
    assert (await feed(client, consumer.app_key, ds)).status_code == 200
    revoked = await client.delete(f"/v1/grants/{grant_id}", headers=auth(provider.admin_key))
    assert revoked.status_code == 204, revoked.text

    async def hidden() -> bool:
        return (await feed(client, consumer.app_key, ds)).status_code == 404

    await eventually(hidden, within=1.5)


async def test_a_change_to_hidden_fields_only_is_invisible_to_the_grantee(
    client: httpx.AsyncClient,
) -> None:
    """Neither the record's validator nor the feed moves when only hidden fields change."""
    provider, consumer = await party(client), await party(client)
    ds = await restricted_dataset(client, provider.org)  # a: 10 (seq 1)
    await grant(client, provider, consumer, ds, scopes=READ, fields=["sku", "name"])
    record_url = f"/v1/datasets/{ds}/records/a"
    before = await client.get(record_url, headers=auth(consumer.app_key))
    assert before.status_code == 200, before.text
    head = (await feed(client, consumer.app_key, ds)).json()["last_seq"]

    patched = await client.patch(record_url, json={"price": 11, "region": HIDDEN_MARKER})
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] != '"1"'  # the owner's validator moved

    after = await client.get(record_url, headers=auth(consumer.app_key))
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.json()["data"] == before.json()["data"] == {"sku": "a", "name": "item a"}
    unchanged = await client.get(
        record_url, headers={**auth(consumer.app_key), "If-None-Match": before.headers["ETag"]}
    )
    assert unchanged.status_code == 304
    assert unchanged.headers["ETag"] == before.headers["ETag"]
    nothing = (await feed(client, consumer.app_key, ds, after=head)).json()
    assert nothing["changes"] == []
    assert nothing["last_seq"] == head + 1

    # A change the grantee can see moves both.
    renamed = await client.patch(record_url, json={"name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    moved = await client.get(
        record_url, headers={**auth(consumer.app_key), "If-None-Match": before.headers["ETag"]}
    )
    assert moved.status_code == 200
    assert moved.headers["ETag"] != before.headers["ETag"]
    shown = (await feed(client, consumer.app_key, ds, after=head)).json()["changes"]
    assert [(c["op"], c["data"]) for c in shown] == [("upsert", {"sku": "a", "name": "renamed"})]


async def test_a_long_poll_moves_past_changes_the_grantee_cannot_see(
    client: httpx.AsyncClient,
) -> None:
    provider, consumer = await party(client), await party(client)
    ds = await restricted_dataset(client, provider.org)  # a: 10, b: 60, c: 120 (seqs 1-3)
    await grant(client, provider, consumer, ds, scopes=READ, row_filter={"price": {"lt": 100}})
    for price in range(200, 205):  # five changes to c, outside the window all along
        put = await client.put(
            f"/v1/datasets/{ds}/records/c", json={"sku": "c", "name": "c", "price": price}
        )
        assert put.status_code == 200, put.text
    response = await client.get(
        f"/v1/datasets/{ds}/changes",
        params={"after": 2, "wait": 0.2, "limit": 2},
        headers=auth(consumer.app_key),
    )
    assert response.status_code == 200, response.text
    assert response.json()["changes"] == []
    assert response.json()["last_seq"] == 8  # past all six hidden changes, in one request
