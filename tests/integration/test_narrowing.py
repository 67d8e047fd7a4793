"""A narrowed grant never leaks hidden data (acceptance item 2), property-tested.

A provider publishes a restricted dataset with three hidden fields
(``secretzq``, ``costzq``, ``tierzq``) and grants a consumer app the other
fields of the rows passing ``{"tierzq": "open", "price": {"lte": 100}}``.
Hypothesis generates the records and the consumer's queries. Every hidden
value, and every visible value of a row the filter excludes, carries a secret
marker. Whatever route the grantee takes (get one, list with any filters,
sorts and projections, export as NDJSON or CSV, the dataset metadata, the
catalog, its own grant, and every error message) the marker and the hidden
field names never appear, and a hidden row or field is indistinguishable from
one that does not exist.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import granted, make_app, make_dataset, make_key, make_org

EXAMPLES: Counter[str] = Counter()
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MARKER = "Mk" + uuid.uuid4().hex  # never sent by the grantee, so never echoed
VISIBLE = ["sku", "name", "price", "region"]
HIDDEN = ["secretzq", "costzq", "tierzq"]
# Each hidden name's stand-in: a field that does not exist at all.
NONEXISTENT = {"secretzq": "nosuch1", "costzq": "nosuch2", "tierzq": "nosuch3"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sku": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "secretzq": {"type": "string"},
        "price": {"type": "integer", "minimum": 0},
        "costzq": {"type": "number"},
        "region": {"type": "string"},
        "tierzq": {"type": "string"},
    },
    "required": ["sku", "name", "price", "secretzq"],
    "additionalProperties": False,
}
ROW_FILTER = {"tierzq": "open", "price": {"lte": 100}}
OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "like"]


def passes_filter(record: dict[str, Any]) -> bool:
    return record.get("tierzq") == "open" and record["price"] <= 100


def projection(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k in VISIBLE}


@dataclass(repr=False)
class Narrowed:
    ds: str
    org: str
    key: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def __repr__(self) -> str:
        return f"Narrowed(ds={self.ds!r}, records={len(self.records)})"

    def visible(self) -> dict[str, dict[str, Any]]:
        return {sku: projection(r) for sku, r in self.records.items() if passes_filter(r)}


def secret_record(
    sku: str, name: str, price: int, region: str | None, tier: str | None, cost: float | None
) -> dict[str, Any]:
    """A record whose hidden values carry the marker, and whose every value does
    when the row filter excludes it."""
    record: dict[str, Any] = {"sku": sku, "name": name, "price": price}
    record["secretzq"] = f"{MARKER}-secret-{sku}"
    if region is not None:
        record["region"] = region
    if tier is not None:
        record["tierzq"] = tier
    if cost is not None:
        record["costzq"] = cost
    if not passes_filter(record):
        record["name"] = f"{MARKER}-name-{sku}"
        record["region"] = f"{MARKER}-region-{sku}"
    return record


# --- leak checks ---------------------------------------------------------------------


def assert_clean(response: httpx.Response, *, allowed_names: frozenset[str] = frozenset()) -> None:
    """No marker, no hidden field name (unless the caller itself sent it), no 5xx."""
    assert response.status_code < 500, response.text
    text = response.text
    assert MARKER not in text, f"{response.request.url} leaked a hidden value: {text[:500]}"
    for name in HIDDEN:
        if name not in allowed_names:
            assert name not in text, f"{response.request.url} leaked {name!r}: {text[:500]}"
    for header, value in response.headers.items():
        assert MARKER not in value, f"header {header} leaked a hidden value"


def normalised(response: httpx.Response, replace: dict[str, str]) -> tuple[int, str, Any]:
    """Status, content type and body with the request id dropped and ``replace`` applied."""
    text = response.text
    for old, new in replace.items():
        text = text.replace(old, new)
    body = json.loads(text)
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, response.headers["content-type"], body


async def get(
    client: httpx.AsyncClient,
    grantee: Narrowed,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> httpx.Response:
    response = await client.get(url, headers={**grantee.headers, **(headers or {})}, **kw)
    assert_clean(response)
    return response


async def check_every_read_route(client: httpx.AsyncClient, grantee: Narrowed) -> None:
    expected = grantee.visible()
    base = f"/v1/datasets/{grantee.ds}"

    listed: dict[str, Any] = {}
    params: dict[str, str] = {"limit": "1000"}
    while True:
        page = await get(client, grantee, f"{base}/records", params=params)
        assert page.status_code == 200, page.text
        listed.update({item["id"]: item["data"] for item in page.json()["data"]})
        if not page.json()["next_cursor"]:
            break
        params["cursor"] = page.json()["next_cursor"]
    assert listed == expected

    ndjson = await get(client, grantee, f"{base}/export", params={"format": "ndjson"})
    assert ndjson.status_code == 200, ndjson.text
    lines = [json.loads(line) for line in ndjson.text.split("\n") if line]
    assert {line["sku"]: line for line in lines} == expected
    assert len(lines) == len(expected)

    exported = await get(client, grantee, f"{base}/export", params={"format": "csv"})
    assert exported.status_code == 200, exported.text
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == VISIBLE
    assert sorted(row[0] for row in rows[1:]) == sorted(expected)


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def grantee(client: httpx.AsyncClient) -> Narrowed:
    provider = (await make_org(client))["name"]
    consumer = (await make_org(client))["name"]
    ds = await make_dataset(
        client,
        provider,
        schema=SCHEMA,
        primary_key="sku",
        visibility="restricted",
        indexes=["price", "secretzq", "tierzq"],
    )
    provider_admin = await make_app(client, provider, scopes=["datasets:read", "admin"])
    admin_key = (await make_key(client, provider_admin["id"]))["key"]
    app = await make_app(client, consumer)
    key = (await make_key(client, app["id"]))["key"]

    await granted(
        client, ds["name"], app["id"], key, admin_key, fields=VISIBLE, row_filter=ROW_FILTER
    )

    state = Narrowed(ds=ds["name"], org=provider, key=key)
    seed = [
        secret_record("seed-open", "visible", 10, "eu", "open", 1.5),
        secret_record("seed-pricey", "pricey", 150, "eu", "open", 2.5),
        secret_record("seed-closed", "closed", 20, "us", "closed", None),
        secret_record("seed-untiered", "untiered", 30, None, None, 3.0),
        secret_record("seed-edge", "edge", 100, "apac", "open", None),
    ]
    await insert(client, state, seed)
    return state


async def insert(client: httpx.AsyncClient, state: Narrowed, records: list[dict[str, Any]]) -> None:
    body = "\n".join(json.dumps(r) for r in records) + "\n"
    response = await client.post(
        f"/v1/datasets/{state.ds}/import",
        content=body.encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == len(records), response.text
    state.records.update({r["sku"]: r for r in records})


# --- properties ------------------------------------------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_characters="\x00\r\n"), max_size=8)
generated_records = st.lists(
    st.tuples(
        names,
        st.integers(0, 200),
        st.one_of(st.none(), st.sampled_from(["eu", "us", "apac"])),
        st.one_of(st.none(), st.sampled_from(["open", "open", "closed", "Open"])),
        st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
    ),
    min_size=1,
    max_size=6,
)


@PROPERTY
@given(batch=generated_records, if_none_match=st.booleans())
async def test_generated_records_are_seen_exactly_as_the_grant_allows(
    client: httpx.AsyncClient,
    grantee: Narrowed,
    batch: list[tuple[str, int, str | None, str | None, float | None]],
    if_none_match: bool,
) -> None:
    EXAMPLES["records"] += 1
    records = [secret_record(f"rec-{uuid.uuid4().hex[:12]}", *fields) for fields in batch]
    await insert(client, grantee, records)
    headers = {"If-None-Match": "*"} if if_none_match else {}

    for record in records:
        sku = record["sku"]
        one = await get(client, grantee, f"/v1/datasets/{grantee.ds}/records/{sku}")
        if passes_filter(record):
            assert one.status_code == 200, one.text
            assert one.json()["data"] == projection(record)
            continue
        # A hidden row answers exactly like an id that was never there.
        missing_id = f"rec-{uuid.uuid4().hex[:12]}"
        missing = await get(
            client, grantee, f"/v1/datasets/{grantee.ds}/records/{missing_id}", headers=headers
        )
        hidden = await get(
            client, grantee, f"/v1/datasets/{grantee.ds}/records/{sku}", headers=headers
        )
        assert hidden.status_code == 404, hidden.text
        assert normalised(hidden, {sku: "<id>"}) == normalised(missing, {missing_id: "<id>"})

    await check_every_read_route(client, grantee)


field_names = st.sampled_from([*VISIBLE, "id", *HIDDEN, "nosuchzz"])
plain_values = st.one_of(
    st.sampled_from(
        ["open", "closed", "eu", "us", "0", "50", "100", "150", "true", "null", "*", "Mk*", "*Mk*"]
    ),
    st.integers(-10, 300).map(str),
    st.text(st.characters(codec="ascii", exclude_characters="\x00"), max_size=5),
)


@st.composite
def list_params(draw: st.DrawFn, skus: list[str]) -> list[tuple[str, str]]:
    values = st.one_of(plain_values, st.sampled_from(skus)) if skus else plain_values
    params: list[tuple[str, str]] = []
    for name, op, value in draw(
        st.lists(st.tuples(field_names, st.sampled_from([None, *OPS, "bogus"]), values), max_size=3)
    ):
        key = f"filter[{name}]" if op is None else f"filter[{name}][{op}]"
        params.append((key, value))
    if draw(st.booleans()):
        sort = draw(
            st.lists(
                st.tuples(st.sampled_from(["", "-", "+"]), field_names), min_size=1, max_size=3
            )
        )
        params.append(("sort", ",".join(sign + name for sign, name in sort)))
    if draw(st.booleans()):
        params.append(("fields", ",".join(draw(st.lists(field_names, min_size=1, max_size=3)))))
    if draw(st.booleans()):
        params.append(("limit", draw(st.sampled_from(["1", "2", "5", "1000"]))))
    return draw(st.permutations(params))


def substituted(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    def swap(text: str) -> str:
        for hidden, stand_in in NONEXISTENT.items():
            text = text.replace(hidden, stand_in)
        return text

    return [(swap(k), swap(v)) for k, v in params]


@PROPERTY
@given(data=st.data())
async def test_no_query_reveals_hidden_fields_or_rows(
    client: httpx.AsyncClient, grantee: Narrowed, data: st.DataObject
) -> None:
    EXAMPLES["queries"] += 1
    params = data.draw(list_params(sorted(grantee.records)))
    url = f"/v1/datasets/{grantee.ds}/records"
    named = frozenset(h for h in HIDDEN if any(h in k or h in v for k, v in params))
    response = await client.get(url, params=tuple(params), headers=grantee.headers)
    assert_clean(response, allowed_names=named)

    if named:
        # Naming a hidden field is answered exactly as naming a field that does not exist.
        stand_in = await get(client, grantee, url, params=tuple(substituted(params)))
        assert response.status_code == 400, response.text
        assert normalised(response, NONEXISTENT) == normalised(stand_in, {})
        return

    visible = grantee.visible()
    pages = 0
    while response.status_code == 200 and pages < 5:
        page = response.json()
        for item in page["data"]:
            assert item["id"] in visible, f"row {item['id']} is hidden by the grant"
            assert set(item["data"]) <= set(VISIBLE)
            assert item["data"] == {
                k: v for k, v in visible[item["id"]].items() if k in item["data"]
            }
        if not page["next_cursor"]:
            break
        pages += 1
        response = await get(
            client,
            grantee,
            url,
            params=(*params, ("cursor", page["next_cursor"])),
        )
    if response.status_code != 200:
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("hidden", HIDDEN)
async def test_a_hidden_field_in_a_query_reads_as_a_nonexistent_one(
    client: httpx.AsyncClient, grantee: Narrowed, hidden: str
) -> None:
    url = f"/v1/datasets/{grantee.ds}/records"
    stand_in = NONEXISTENT[hidden]
    queries: list[dict[str, str]] = [
        {"filter[{}]": "open"},
        {"filter[{}][gt]": "1"},
        {"sort": "-{}"},
        {"fields": "sku,{}"},
        {"filter[price][lt]": "50", "sort": "price,{}"},
    ]

    def query(template: dict[str, str], name: str) -> dict[str, str]:
        return {k.replace("{}", name): v.replace("{}", name) for k, v in template.items()}

    for template in queries:
        response = await client.get(url, params=query(template, hidden), headers=grantee.headers)
        assert_clean(response, allowed_names=frozenset({hidden}))
        assert response.status_code == 400, response.text
        assert "Unknown field" in response.json()["detail"]
        nonexistent = await get(client, grantee, url, params=query(template, stand_in))
        assert normalised(response, {hidden: stand_in}) == normalised(nonexistent, {})


async def test_metadata_hides_the_hidden_fields(
    client: httpx.AsyncClient, grantee: Narrowed
) -> None:
    one = await get(client, grantee, f"/v1/datasets/{grantee.ds}")
    assert one.status_code == 200, one.text
    assert list(one.json()["schema"]["properties"]) == VISIBLE
    assert one.json()["schema"]["required"] == ["sku", "name", "price"]
    assert one.json()["indexes"] == ["price"]

    catalog = await get(client, grantee, "/v1/datasets", params={"org": grantee.org})
    [entry] = catalog.json()["data"]
    assert entry == one.json()

    for url in ("/v1/grants", "/v1/access-requests"):
        mine = await get(client, grantee, url)
        assert mine.status_code == 200, mine.text
        assert len(mine.json()["data"]) == 1
    grant = (await get(client, grantee, "/v1/grants")).json()["data"][0]
    assert grant["fields"] == VISIBLE
    assert grant["row_filter"] == {"price": {"lte": 100}}  # the hidden-field condition is left out
    assert (await get(client, grantee, f"/v1/grants/{grant['id']}")).json() == grant


async def test_refused_writes_reveal_nothing_either(
    client: httpx.AsyncClient, grantee: Narrowed
) -> None:
    hidden_sku = next(s for s, r in grantee.records.items() if not passes_filter(r))
    base = f"/v1/datasets/{grantee.ds}/records"
    for method, body in (("PUT", {"sku": hidden_sku, "name": "x", "price": 1}), ("DELETE", None)):
        for sku in (hidden_sku, "never-there"):
            response = await client.request(
                method,
                f"{base}/{sku}",
                json={**body, "sku": sku} if body else None,
                headers=grantee.headers,
            )
            assert_clean(response)
            assert response.status_code == 403, response.text
    patch = await client.patch(
        f"{base}/{hidden_sku}", json={"secretzq": "x"}, headers=grantee.headers
    )
    assert patch.status_code == 403, patch.text
    assert MARKER not in patch.text


def test_the_properties_really_ran() -> None:
    """Guards against a property silently running zero examples."""
    assert EXAMPLES["records"] >= 50, EXAMPLES
    assert EXAMPLES["queries"] >= 50, EXAMPLES
