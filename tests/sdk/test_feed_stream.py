"""The feed over Server-Sent Events: changes as they commit, resumed after a break."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from entrepot.client import Change, Checkpoint, Client, Gone
from tests.sdk.conftest import ADMIN, FAST
from tests.sdk.proxy import Proxy
from tests.waiting import wait_until


def put(admin: Client, ds: str, *keys: str) -> None:
    for key in keys:
        admin.records.put(ds, key, {"sku": key, "name": key})


def take(stream: object, count: int) -> list[Change]:
    it = iter(stream)  # type: ignore[call-overload]
    return [next(it) for _ in range(count)]


def test_the_stream_yields_changes_and_checkpoints_each_one(
    admin: Client, keyed_dataset: str
) -> None:
    put(admin, keyed_dataset, "a", "b", "c")
    checkpoints: list[Checkpoint] = []
    changes = take(admin.changes.stream(keyed_dataset, checkpoint=checkpoints.append), 3)
    assert [(c.id, c.seq) for c in changes] == [("a", 1), ("b", 2), ("c", 3)]
    assert [c.seq for c in checkpoints] == [1, 2], "the third is not handled until asked past"
    assert checkpoints[0].incarnation


def test_the_stream_delivers_a_change_committed_while_it_waits(
    through: Proxy, admin: Client, keyed_dataset: str
) -> None:
    got: list[Change] = []
    with Client(through.url, ADMIN, retry=FAST) as client:
        stream = iter(client.changes.stream(keyed_dataset))
        reader = threading.Thread(target=lambda: got.append(next(stream)))
        reader.start()
        wait_until(
            lambda: through.seen("GET", f"/v1/datasets/{keyed_dataset}/changes"),
            "the stream is open",
        )
        put(admin, keyed_dataset, "later")
        reader.join(30)
        stream.close()  # type: ignore[attr-defined]
    assert [c.id for c in got] == ["later"]


def test_a_broken_stream_resumes_after_the_last_change_seen(
    through: Proxy, admin: Client, keyed_dataset: str
) -> None:
    put(admin, keyed_dataset, "a", "b", "c")
    through.cut_after(b'"id":"a"')
    with Client(through.url, ADMIN, retry=FAST) as client:
        changes = take(client.changes.stream(keyed_dataset), 3)
    assert [c.id for c in changes] == ["a", "b", "c"], "nothing lost, nothing twice"
    opened = through.seen("GET", f"/v1/datasets/{keyed_dataset}/changes")
    assert [("after=0" in r.target, "after=1" in r.target) for r in opened] == [
        (True, False),
        (False, True),
    ]


def test_a_stream_opened_on_another_incarnation_raises_gone(
    admin: Client, keyed_dataset: str
) -> None:
    put(admin, keyed_dataset, "a")
    with pytest.raises(Gone) as gone:
        take(admin.changes.stream(keyed_dataset, since=1, incarnation="0" * 32), 1)
    assert gone.value.reason == "incarnation"


def test_a_stream_ticket_opens_the_stream_without_the_key(
    server: str, admin: Client, keyed_dataset: str
) -> None:
    put(admin, keyed_dataset, "a")
    ticket = admin.changes.ticket(keyed_dataset)
    assert ticket.url == f"{server}/v1/datasets/{keyed_dataset}/changes?ticket={ticket.ticket}"
    assert ticket.expires_at.timestamp() > time.time()
    with (
        httpx.Client(timeout=10) as browser,
        browser.stream("GET", ticket.url, headers={"Accept": "text/event-stream"}) as opened,
    ):
        assert opened.status_code == 200
        lines = opened.iter_lines()
        assert next(line for line in lines if line.startswith("data:")).startswith(
            'data: {"seq":1,"op":"upsert","id":"a"'
        )
