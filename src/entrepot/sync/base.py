"""What every sync target shares: the checkpoint, the page check, and the protocols.

A target keeps each mirrored table's feed position in ``entrepot_sync_checkpoints``
and moves it only in the same local transaction as the rows it accounts for
(:mod:`entrepot.sync.targets` says why that is the whole crash-safety argument).
The rules that do not depend on the database live here, once: which changes of a
page are new and whether they continue the checkpoint (:func:`rows_to_apply`),
and how a page is cut into runs of one op for batched statements (:func:`runs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from entrepot import jsonbody

CHECKPOINTS = "entrepot_sync_checkpoints"
Row = tuple[str, int, str]  # id, version, data as JSON text


class FeedGap(Exception):
    """The changes do not continue the checkpoint (out of order, or past the page's end)."""


class SchemaDrift(Exception):
    """A record does not fit the columns its table was made with: the dataset's schema
    has probably changed since (the agent reads it again, and resnapshots if so)."""


class CannotMirror(Exception):
    """The target cannot hold this dataset as it is now: retrying would not help, so the
    dataset stops with this message (the others go on)."""


class TargetUnavailable(Exception):
    """The target cannot be reached or used (its message names it, never a password)."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    incarnation: str | None  # None: written by an agent that did not record it


def rows_to_apply(
    checkpoint: int, changes: Sequence[dict[str, Any]], last_seq: int
) -> list[dict[str, Any]]:
    """The changes after ``checkpoint``, checked to move strictly forward to ``last_seq``.

    Seqs may skip: a grant narrowed by a row filter or to some fields is not
    shown the changes it could not see, and the page's ``last_seq`` covers them.
    """
    fresh = [c for c in changes if int(c["seq"]) > checkpoint]
    previous = checkpoint
    for change in fresh:
        seq = int(change["seq"])
        if seq <= previous or seq > last_seq:
            raise FeedGap(f"seq {seq} after {previous} in a page ending at {last_seq}")
        if change["op"] not in ("upsert", "delete"):
            raise ValueError(f"unknown op {change['op']!r} at seq {change['seq']}")
        previous = seq
    return fresh


def data_text(change: dict[str, Any]) -> str:
    return jsonbody.dumps(change["data"])


def runs(changes: Iterable[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Consecutive changes grouped by op, order kept (an executemany per run)."""
    found: list[tuple[str, list[dict[str, Any]]]] = []
    for change in changes:
        if found and found[-1][0] == change["op"]:
            found[-1][1].append(change)
        else:
            found.append((change["op"], [change]))
    return found


class Snapshot(Protocol):
    async def add(self, rows: Sequence[Row]) -> None: ...

    async def commit(self, seq: int, incarnation: str | None) -> None: ...


class Target(Protocol):
    """A local store for mirrored tables and their checkpoints."""

    # True when the tables' columns derive from the dataset's schema (MySQL): the
    # agent then reads the schema again now and then, and after a SchemaDrift.
    schema_bound: bool

    async def prepare(self, table: str, dataset: str, schema: dict[str, Any]) -> str | None:
        """Get ready to mirror ``dataset`` (whose schema, as the agent sees it, is
        ``schema``) into ``table``. Why its mirror cannot be continued (its columns were
        made from another schema), or None. Raises ValueError for a dataset this target
        cannot hold, before anything is written."""
        ...

    async def checkpoint(self, table: str) -> Checkpoint | None: ...

    def snapshot(self, table: str, dataset: str) -> Any:
        """An async context manager yielding a :class:`Snapshot`; uncommitted, it is undone."""
        ...

    async def apply(
        self, table: str, dataset: str, changes: Sequence[dict[str, Any]], last_seq: int
    ) -> int:
        """Apply changes and move the checkpoint to ``last_seq`` atomically; the new checkpoint."""
        ...

    async def close(self) -> None: ...
