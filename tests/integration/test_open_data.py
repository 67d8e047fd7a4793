"""Open data: a dataset its provider marks ``open`` is read by anyone, with no credential.

Anonymous callers read open datasets (metadata, records, exports, the feed) and nothing
else: every other dataset, existing or not, answers them the 401 a missing credential
gets, so none of them learns what exists. They never write. They are rate limited per
client address by the ``anonymous`` plan. A credential that is sent is always checked:
a bad one never falls back to anonymous. ``ENTREPOT_ANONYMOUS_READS=false`` turns it off.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN, app_and_client
from tests.factories import app_key, make_dataset, make_org, unique
from tests.waiting import until

RECORD = {"sku": "a-1", "name": "Anvil", "price": 12.5}


def addresses() -> Iterator[str]:
    """Client addresses of this module's own, so its rate-limit buckets are its own."""
    base = secrets.randbelow(200)
    for n in range(1, 250):
        yield f"198.51.{base}.{n}"


ADDRESSES = addresses()


@asynccontextmanager
async def from_address(app: object, address: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credential, calling from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address or next(ADDRESSES), 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def nobody(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with from_address(app) as c:
        yield c


@pytest.fixture
async def open_ds(client: httpx.AsyncClient) -> dict[str, Any]:
    dataset = await make_dataset(client, visibility="open", primary_key="sku")
    created = await client.post(f"/v1/datasets/{dataset['name']}/records", json=RECORD)
    assert created.status_code == 201, created.text
    return dataset


async def test_anyone_reads_an_open_dataset_without_a_credential(
    nobody: httpx.AsyncClient, open_ds: dict[str, Any]
) -> None:
    ds = open_ds["name"]
    meta = await nobody.get(f"/v1/datasets/{ds}")
    assert meta.status_code == 200, meta.text
    assert meta.json()["visibility"] == "open"

    listed = await nobody.get(f"/v1/datasets/{ds}/records")
    assert listed.status_code == 200, listed.text
    assert [r["data"] for r in listed.json()["data"]] == [RECORD]

    one = await nobody.get(f"/v1/datasets/{ds}/records/a-1")
    assert one.status_code == 200, one.text
    assert one.json()["data"] == RECORD
    again = await nobody.get(
        f"/v1/datasets/{ds}/records/a-1", headers={"If-None-Match": one.headers["etag"]}
    )
    assert again.status_code == 304

    exported = await nobody.get(f"/v1/datasets/{ds}/export", params={"format": "ndjson"})
    assert exported.status_code == 200, exported.text
    assert [orjson.loads(line) for line in exported.text.splitlines()] == [RECORD]

    feed = await nobody.get(f"/v1/datasets/{ds}/changes")
    assert feed.status_code == 200, feed.text
    assert [c["id"] for c in feed.json()["changes"]] == ["a-1"]
    assert "ratelimit-limit" in {h.lower() for h in feed.headers}


async def test_the_dataset_list_shows_an_anonymous_caller_open_datasets_only(
    client: httpx.AsyncClient, nobody: httpx.AsyncClient
) -> None:
    org = (await make_org(client))["name"]
    made = {
        v: (await make_dataset(client, org, visibility=v))["name"]
        for v in ("open", "public", "restricted")
    }
    listed = await nobody.get("/v1/datasets", params={"org": org})
    assert listed.status_code == 200, listed.text
    assert [d["name"] for d in listed.json()["data"]] == [made["open"]]


async def test_any_other_dataset_answers_the_401_of_a_missing_credential(
    client: httpx.AsyncClient, nobody: httpx.AsyncClient
) -> None:
    """Public, restricted or missing: the same answer, so nothing tells them apart."""
    answers = []
    for visibility in ("public", "restricted", None):
        ds = (
            (await make_dataset(client, visibility=visibility))["name"]
            if visibility
            else unique("ds")
        )
        for path in ("", "/records", "/records/a-1", "/changes", "/export"):
            answer = await nobody.get(f"/v1/datasets/{ds}{path}")
            assert answer.status_code == 401, (visibility, path, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            body = answer.json()
            answers.append((body["type"], body["title"], body["detail"]))
    assert len(set(answers)) == 1, answers


async def test_an_anonymous_caller_never_writes(
    nobody: httpx.AsyncClient, open_ds: dict[str, Any]
) -> None:
    ds = open_ds["name"]
    calls = [
        nobody.post(f"/v1/datasets/{ds}/records", json={**RECORD, "sku": "b-2"}),
        nobody.put(f"/v1/datasets/{ds}/records/a-1", json=RECORD),
        nobody.patch(f"/v1/datasets/{ds}/records/a-1", json={"price": 1}),
        nobody.delete(f"/v1/datasets/{ds}/records/a-1"),
        nobody.patch(f"/v1/datasets/{ds}", json={"title": "Mine now"}),
        nobody.delete(f"/v1/datasets/{ds}"),
        nobody.post(f"/v1/datasets/{ds}/import", content=b'{"sku":"c","name":"C","price":1}\n'),
        nobody.get("/v1/me"),
    ]
    for call in calls:
        answer = await call
        assert answer.status_code == 401, answer.text


async def test_a_bad_credential_is_refused_not_read_as_anonymous(
    nobody: httpx.AsyncClient, open_ds: dict[str, Any]
) -> None:
    ds = open_ds["name"]
    for header in ("Bearer ent_" + secrets.token_urlsafe(32), "Basic Zm9vOmJhcg==", ""):
        answer = await nobody.get(f"/v1/datasets/{ds}/records", headers={"Authorization": header})
        assert answer.status_code == 401, (header, answer.text)


async def test_an_app_without_a_grant_reads_an_open_dataset_as_a_public_one(
    client: httpx.AsyncClient, nobody: httpx.AsyncClient, open_ds: dict[str, Any]
) -> None:
    other = (await make_org(client))["name"]
    key = await app_key(client, other, ["records:read"])
    answer = await nobody.get(
        f"/v1/datasets/{open_ds['name']}/records/a-1", headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200, answer.text


async def test_anonymous_callers_are_limited_per_client_address(
    app: FastAPI, client: httpx.AsyncClient, open_ds: dict[str, Any]
) -> None:
    before = (await client.get("/v1/plans/anonymous")).json()
    squeezed = await client.patch(
        "/v1/plans/anonymous", json={"rate_per_second": 0.001, "burst": 2}
    )
    assert squeezed.status_code == 200, squeezed.text
    path = f"/v1/datasets/{open_ds['name']}/records/a-1"
    try:
        async with from_address(app) as greedy, from_address(app) as other:

            async def refused() -> httpx.Response | None:
                answer = await greedy.get(path)
                return answer if answer.status_code == 429 else None

            # The plan reaches every replica's limiter through NOTIFY: wait for it here.
            answer = await until(refused, "the squeezed anonymous plan refuses the greedy address")
            assert answer.json()["type"].endswith("/rate-limited")
            assert int(answer.headers["retry-after"]) >= 1
            assert (await other.get(path)).status_code == 200
    finally:
        restored = await client.patch(
            "/v1/plans/anonymous",
            json={"rate_per_second": before["rate_per_second"], "burst": before["burst"]},
        )
        assert restored.status_code == 200, restored.text


async def test_closing_an_open_dataset_closes_it_to_anonymous_callers(
    client: httpx.AsyncClient, nobody: httpx.AsyncClient, open_ds: dict[str, Any]
) -> None:
    ds = open_ds["name"]
    assert (await nobody.get(f"/v1/datasets/{ds}/records")).status_code == 200
    closed = await client.patch(f"/v1/datasets/{ds}", json={"visibility": "public"})
    assert closed.status_code == 200, closed.text

    async def refused() -> bool:
        return (await nobody.get(f"/v1/datasets/{ds}/records")).status_code == 401

    await until(refused, "the closed dataset refuses an anonymous caller")


async def test_operators_can_turn_anonymous_reads_off(
    settings: Settings, open_ds: dict[str, Any]
) -> None:
    closed = settings.model_copy(update={"anonymous_reads": False})
    async with app_and_client(closed) as (application, admin):
        async with from_address(application) as nobody:
            answer = await nobody.get(f"/v1/datasets/{open_ds['name']}/records")
            assert answer.status_code == 401, answer.text
            assert (await nobody.get("/v1/datasets")).status_code == 401
        assert admin.headers["Authorization"] == f"Bearer {ADMIN_TOKEN}"
        assert (await admin.get(f"/v1/datasets/{open_ds['name']}/records")).status_code == 200


async def test_the_anonymous_plan_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    refused = await client.delete("/v1/plans/anonymous")
    assert refused.status_code == 409, refused.text
    assert "anonymous" in refused.json()["detail"]
    assert (await client.get("/v1/plans/anonymous")).status_code == 200
