"""Request building shared by both clients: filters, paths, keys, import chunks."""

from __future__ import annotations

import io
import json
from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st

from entrepot.client import request as rq


def test_filters_mirror_the_list_syntax() -> None:
    params = rq.filter_params(
        {"price": {"lt": 50, "gte": 1}, "region": "eu", "active": True, "sku": ["a", "b"]}
    )
    assert params == [
        ("filter[price][lt]", "50"),
        ("filter[price][gte]", "1"),
        ("filter[region]", "eu"),
        ("filter[active]", "true"),
        ("filter[sku][in]", "a,b"),
    ]
    assert rq.filter_params(None) == []


def test_query_leaves_out_what_is_not_given() -> None:
    assert rq.query(limit=10, cursor=None, q="x") == [("limit", "10"), ("q", "x")]


@given(st.text(min_size=1))
def test_a_record_id_is_one_path_segment_whatever_it_holds(record_id: str) -> None:
    path = rq.record_path("ds", record_id)
    prefix = "/v1/datasets/ds/records/"
    assert path.startswith(prefix)
    tail = path.removeprefix(prefix)
    assert "/" not in tail
    assert "?" not in tail
    assert "#" not in tail
    assert unquote(tail) == record_id


def test_writes_get_a_new_key_unless_one_is_given() -> None:
    first = rq.idempotency_key("POST", rq.AUTO)
    assert first is not None
    assert first != rq.idempotency_key("POST", rq.AUTO)
    assert rq.idempotency_key("delete", rq.AUTO) is not None
    assert rq.idempotency_key("GET", rq.AUTO) is None
    assert rq.idempotency_key("PUT", "mine") == "mine"
    assert rq.idempotency_key("PUT", None) is None


def test_json_keeps_big_integers_exact() -> None:
    big = 2**80 + 1
    assert rq.loads(rq.dumps({"n": big})) == {"n": big}


def test_records_are_chunked_as_ndjson_never_whole() -> None:
    records = ({"n": n, "pad": "x" * 100} for n in range(10_000))
    chunks = list(rq.import_chunks(records))
    assert len(chunks) > 1
    assert all(len(chunk) <= rq.CHUNK + 200 for chunk, _ in chunks)
    body = b"".join(chunk for chunk, _ in chunks)
    assert [json.loads(line)["n"] for line in body.splitlines()] == list(range(10_000))
    assert sum(count for _, count in chunks) == 10_000


def test_files_are_read_in_chunks_with_their_line_counts() -> None:
    data = b"".join(b'{"n": %d}\n' % n for n in range(50_000))
    chunks = list(rq.import_chunks(io.BytesIO(data)))
    assert b"".join(c for c, _ in chunks) == data
    assert sum(n for _, n in chunks) == 50_000
    assert len(chunks) > 1


def test_the_content_type_follows_the_format_or_the_suffix() -> None:
    assert rq.import_content_type("x.csv", None) == rq.CSV
    assert rq.import_content_type("x.ndjson", None) == rq.NDJSON
    assert rq.import_content_type([], "csv") == rq.CSV
