"""Bulk import from paths, files and iterables; exports to files; the feed follower."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from entrepot.client import Change, Checkpoint, Client, Gone, RateLimited, Transfer, ValidationError
from tests.sdk.conftest import ADMIN, FAST
from tests.sdk.proxy import Proxy
from tests.waiting import wait_until


def products(count: int, start: int = 0) -> Iterator[dict[str, Any]]:
    for n in range(start, start + count):
        yield {"sku": f"p{n:05}", "name": f"Product {n}", "price": n}


def test_import_from_an_iterable_streams_in_chunks_with_progress(
    admin: Client, keyed_dataset: str
) -> None:
    seen: list[Transfer] = []
    report = admin.import_records(keyed_dataset, products(12_000), progress=seen.append)
    assert (report.inserted, report.updated, report.failed) == (12_000, 0, 0)
    assert len(seen) > 1, "more than one chunk: never the whole body at once"
    assert seen[-1].records == 12_000
    assert [s.bytes for s in seen] == sorted(s.bytes for s in seen)
    assert sum(1 for _ in admin.records.list(keyed_dataset, limit=1000)) == 12_000


def test_import_from_a_path_and_a_file_upserts_and_reports_errors(
    admin: Client, keyed_dataset: str, tmp_path: Path
) -> None:
    path = tmp_path / "products.ndjson"
    path.write_text("".join(json.dumps(p) + "\n" for p in products(3)))
    assert admin.import_records(keyed_dataset, path).inserted == 3

    csv = io.BytesIO(b"sku,name,price\np00000,Renamed,1\np00009,New,9\n")
    report = admin.import_records(keyed_dataset, csv, format="csv", mode="upsert")
    assert (report.inserted, report.updated) == (1, 1)
    assert admin.records.get(keyed_dataset, "p00000").data["name"] == "Renamed"

    bad = [{"sku": "ok", "name": "Fine"}, {"sku": "bad", "name": "Bad", "price": -1}]
    with pytest.raises(ValidationError) as refused:
        admin.import_records(keyed_dataset, bad)
    assert refused.value.status == 422
    skipped = admin.import_records(keyed_dataset, bad, on_error="skip")
    assert (skipped.inserted, skipped.failed) == (1, 1)
    assert skipped.errors[0].line == 2


def test_export_streams_to_a_file_that_imports_back_unchanged(
    admin: Client, keyed_dataset: str, dataset: str, tmp_path: Path
) -> None:
    admin.import_records(keyed_dataset, products(1200))
    seen: list[Transfer] = []
    path = tmp_path / "out.ndjson"
    result = admin.export(keyed_dataset, path, progress=seen.append)
    assert result.records == 1200
    assert result.bytes == path.stat().st_size
    assert seen[-1] == Transfer(result.bytes, 1200)
    assert result.seq > 0
    assert result.incarnation

    assert admin.import_records(dataset, path).inserted == 1200
    buffer = io.BytesIO()
    csv = admin.export(keyed_dataset, buffer, format="csv")
    assert buffer.getvalue().splitlines()[0] == b"sku,name,price,region"
    assert csv.records == 1201  # the header line too


def test_an_export_as_parquet_or_arrow_is_a_file_of_typed_columns(
    admin: Client, keyed_dataset: str, tmp_path: Path
) -> None:
    admin.import_records(keyed_dataset, products(300))
    path = tmp_path / "out.parquet"
    result = admin.export(keyed_dataset, path, format="parquet")
    assert result.records is None  # the file's own metadata counts its rows
    assert result.bytes == path.stat().st_size
    table = pq.read_table(path)
    assert table.num_rows == 300
    assert table.column("price").type == pa.float64()
    assert table.column("_id").to_pylist() == [f"p{n:05}" for n in range(300)]
    buffer = io.BytesIO()
    admin.export(keyed_dataset, buffer, format="arrow")
    assert pa.ipc.open_stream(buffer.getvalue()).read_all().equals(table)


def test_an_export_is_retried_until_its_first_byte(
    through: Proxy, keyed_dataset: str, admin: Client, tmp_path: Path
) -> None:
    admin.import_records(keyed_dataset, products(10))
    through.answer(1, 503, body=b'{"title": "Unavailable", "status": 503}')
    with Client(through.url, ADMIN, retry=FAST) as client:
        result = client.export(keyed_dataset, tmp_path / "x.ndjson")
    assert result.records == 10


def test_an_import_from_an_iterable_is_not_sent_twice(
    through: Proxy, keyed_dataset: str, admin: Client
) -> None:
    through.answer(1, 429, headers={"Retry-After": "0"}, body=b'{"title": "Slow down"}')
    with Client(through.url, ADMIN, retry=FAST) as client, pytest.raises(RateLimited):
        client.import_records(keyed_dataset, products(3))
    assert len(through.seen("POST", f"/v1/datasets/{keyed_dataset}/import")) == 1
    assert list(admin.records.list(keyed_dataset)) == []


def test_an_import_from_a_path_is_sent_again_after_a_429(
    through: Proxy, keyed_dataset: str, tmp_path: Path
) -> None:
    path = tmp_path / "p.ndjson"
    path.write_text("".join(json.dumps(p) + "\n" for p in products(3)))
    through.answer(1, 429, headers={"Retry-After": "0"}, body=b'{"title": "Slow down"}')
    with Client(through.url, ADMIN, retry=FAST) as client:
        assert client.import_records(keyed_dataset, path).inserted == 3
    assert len(through.seen("POST", f"/v1/datasets/{keyed_dataset}/import")) == 2


def test_the_follower_yields_every_change_in_order_and_checkpoints(
    admin: Client, keyed_dataset: str
) -> None:
    ds = keyed_dataset
    for n in range(5):
        admin.records.put(ds, f"k{n}", {"sku": f"k{n}", "name": "v1"})
    admin.records.delete(ds, "k0")
    checkpoints: list[Checkpoint] = []

    changes = list(
        admin.changes.follow(ds, checkpoint=checkpoints.append, limit=2, until_idle=True)
    )
    assert [(c.op, c.id) for c in changes] == [
        *[("upsert", f"k{n}") for n in range(5)],
        ("delete", "k0"),
    ]
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    assert [c.seq for c in checkpoints] == [changes[1].seq, changes[3].seq, changes[5].seq]
    assert checkpoints[-1].incarnation

    admin.records.patch(ds, "k1", {"name": "v2"})
    last = checkpoints[-1]
    resumed = list(
        admin.changes.follow(ds, since=last.seq, incarnation=last.incarnation, until_idle=True)
    )
    assert [(c.op, c.id, c.version) for c in resumed] == [("upsert", "k1", 2)]


def test_the_follower_checkpoints_only_what_the_caller_has_handled(
    admin: Client, keyed_dataset: str
) -> None:
    ds = keyed_dataset
    for n in range(4):
        admin.records.put(ds, f"k{n}", {"sku": f"k{n}", "name": "x"})
    checkpoints: list[Checkpoint] = []
    follower = admin.changes.follow(ds, checkpoint=checkpoints.append, limit=2, until_idle=True)
    for change in follower:
        if change.id == "k2":
            break  # k2 was not handled: the checkpoint stays at k1
    assert [c.seq for c in checkpoints] == [2]


def test_the_follower_long_polls_for_the_next_change(
    through: Proxy, admin: Client, keyed_dataset: str
) -> None:
    ds = keyed_dataset
    got: list[Change] = []
    with Client(through.url, ADMIN) as client:
        follower = iter(client.changes.follow(ds, wait=30))
        reader = threading.Thread(target=lambda: got.append(next(follower)))
        reader.start()
        wait_until(
            lambda: through.seen("GET", f"/v1/datasets/{ds}/changes?after=0"),
            "the follower's long poll reached the server",
        )
        admin.records.put(ds, "later", {"sku": "later", "name": "L"})
        reader.join(30)
    assert [c.id for c in got] == ["later"]
    [poll] = through.seen("GET", f"/v1/datasets/{ds}/changes")
    assert "wait=30" in poll.target, "one long poll, answered by the change"


def test_a_cursor_from_another_incarnation_raises_gone(admin: Client, keyed_dataset: str) -> None:
    admin.records.put(keyed_dataset, "a", {"sku": "a", "name": "A"})
    with pytest.raises(Gone) as gone:
        list(admin.changes.follow(keyed_dataset, since=1, incarnation="0" * 32, until_idle=True))
    assert gone.value.reason == "incarnation"
