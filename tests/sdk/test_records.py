"""Records through the SDK: CRUD, ETags and If-Match, lists over cursor pages."""

from __future__ import annotations

import httpx
import pytest

from entrepot.client import (
    Client,
    NotFound,
    PreconditionFailed,
    Record,
    Unauthorized,
    ValidationError,
)
from tests.sdk.conftest import ADMIN, SCHEMA, unique


def test_create_get_put_patch_delete_round_trip(admin: Client, dataset: str) -> None:
    created = admin.records.create(dataset, {"sku": "a", "name": "Apple", "price": 1.5})
    assert isinstance(created, Record)
    assert created.version == 1
    assert created.etag == '"1"'
    assert created.dataset == dataset

    read = admin.records.get(dataset, created.id)
    assert read.data == {"sku": "a", "name": "Apple", "price": 1.5}

    replaced = admin.records.put(
        dataset, created.id, {"sku": "a", "name": "Apricot", "region": "eu"}
    )
    assert (replaced.version, replaced.data) == (2, {"sku": "a", "name": "Apricot", "region": "eu"})

    patched = admin.records.patch(dataset, created.id, {"price": 2, "region": None})
    assert patched.version == 3
    assert patched.data == {"sku": "a", "name": "Apricot", "price": 2}

    admin.records.delete(dataset, created.id)
    with pytest.raises(NotFound) as gone:
        admin.records.get(dataset, created.id)
    assert gone.value.status == 404
    assert gone.value.problem["status"] == 404


def test_update_sends_if_match_and_a_stale_copy_is_refused(admin: Client, dataset: str) -> None:
    mine = admin.records.create(dataset, {"sku": "b", "name": "Banana"})
    theirs = admin.records.get(dataset, mine.id)
    theirs.data["name"] = "Blueberry"
    admin.records.update(theirs)

    mine.data["name"] = "Blackberry"
    with pytest.raises(PreconditionFailed) as refused:
        admin.records.update(mine)
    assert refused.value.problem["status"] == 412
    assert admin.records.get(dataset, mine.id).data["name"] == "Blueberry"

    fresh = admin.records.refresh(mine)
    assert fresh.version == 2
    assert admin.records.refresh(fresh) is fresh  # 304: nothing changed
    fresh.data["name"] = "Blackberry"
    assert admin.records.update(fresh).version == 3

    with pytest.raises(PreconditionFailed):
        admin.records.remove(fresh)  # version 2 was read; it is 3 now
    admin.records.remove(admin.records.get(dataset, mine.id))
    with pytest.raises(NotFound):
        admin.records.get(dataset, mine.id)


def test_put_with_if_none_match_star_creates_only_if_absent(
    admin: Client, keyed_dataset: str
) -> None:
    first = admin.records.put(keyed_dataset, "k1", {"sku": "k1", "name": "One"}, if_none_match="*")
    assert (first.id, first.version) == ("k1", 1)
    with pytest.raises(PreconditionFailed):
        admin.records.put(keyed_dataset, "k1", {"sku": "k1", "name": "Two"}, if_none_match="*")


def test_an_invalid_record_raises_validation_error_with_paths(admin: Client, dataset: str) -> None:
    with pytest.raises(ValidationError) as invalid:
        admin.records.create(dataset, {"sku": "c", "name": "Cherry", "price": -1})
    problem = invalid.value
    assert problem.status == 422
    assert problem.type.endswith("/validation")
    assert [e["path"] for e in problem.errors] == ["/price"]
    assert problem.request_id


def test_list_iterates_every_page_with_filter_sort_and_fields(admin: Client, dataset: str) -> None:
    for n in range(7):
        admin.records.create(
            dataset,
            {"sku": f"s{n}", "name": f"n{n}", "price": n, "region": "eu" if n % 2 else "us"},
        )

    listed = admin.records.list(
        dataset,
        filter={"price": {"gte": 1}, "region": "eu"},
        sort="-price",
        fields="sku,price",
        limit=2,
    )
    items = list(listed)
    assert [r.data for r in items] == [
        {"sku": "s5", "price": 5},
        {"sku": "s3", "price": 3},
        {"sku": "s1", "price": 1},
    ]
    assert all(r.dataset == dataset for r in items)

    pages = list(admin.records.list(dataset, sort="price", limit=3).pages())
    assert [len(p.data) for p in pages] == [3, 3, 1]
    assert pages[-1].next_cursor is None
    assert [r.data["sku"] for p in pages for r in p.data] == [f"s{n}" for n in range(7)]

    in_list = admin.records.list(dataset, filter={"sku": ["s0", "s6"]}, sort="sku")
    assert [r.data["sku"] for r in in_list] == ["s0", "s6"]


def test_an_http_client_of_your_own_is_used_and_left_open(server: str, dataset: str) -> None:
    seen: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [seen.append]})
    with Client(server, ADMIN, http=http, headers={"X-Request-ID": "mine-1"}) as api:
        api.datasets.get(dataset)
    assert [r.url.path for r in seen] == [f"/v1/datasets/{dataset}"]
    assert seen[0].headers["x-request-id"] == "mine-1"
    assert seen[0].headers["authorization"] == f"Bearer {ADMIN}"
    assert not http.is_closed
    http.close()


def test_a_client_without_a_credential_reads_open_data_only(
    admin: Client, server: str, keyed_dataset: str
) -> None:
    org = admin.orgs.create(unique("org"), "Org")
    stations = admin.datasets.create(
        unique("ds"),
        org=org.name,
        title="Stations",
        schema=SCHEMA,
        primary_key="sku",
        visibility="open",
    ).name
    admin.records.create(stations, {"sku": "brest", "name": "Brest"})
    admin.records.create(keyed_dataset, {"sku": "x", "name": "Hidden"})
    with Client(server, None) as nobody:
        assert nobody.records.get(stations, "brest").data == {"sku": "brest", "name": "Brest"}
        assert [r.id for r in nobody.records.list(stations)] == ["brest"]
        with pytest.raises(Unauthorized):
            nobody.records.get(keyed_dataset, "x")
        with pytest.raises(Unauthorized):
            nobody.records.create(stations, {"sku": "mine", "name": "Mine"})
