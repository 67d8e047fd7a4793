"""The sync agent: snapshot by export, then follow the change feed, checkpointed locally.

Per dataset, the loop is:

1. No checkpoint (first run, or after a 410): open the export with
   ``envelope=true`` (lines ``{id, version, data}``), stage its rows, then
   replace the table and set the checkpoint to the export's
   ``X-Entrepot-Seq`` and ``X-Entrepot-Incarnation`` in one local
   transaction. The server reads that seq in the same REPEATABLE READ
   snapshot it exports, and seqs are assigned in commit order, so the table
   then holds exactly the changes up to it.
2. Long-poll ``/changes?after=<checkpoint>&incarnation=<its incarnation>&wait=``;
   apply each page and move the checkpoint in one local transaction (see
   :mod:`entrepot.sync.targets`).
3. A target whose columns derive from the schema (MySQL) has the dataset's schema
   read again every ``SCHEMA_CHECK_SECONDS`` while following, and at once when a
   record does not fit its columns (:class:`SchemaDrift`); columns that changed
   make it resnapshot, as a 410 does (the snapshot remakes the table).
4. A 410 (the position was compacted away, is past the head, or belongs to
   an earlier incarnation: the dataset was deleted and created again) drops
   back to 1, or, with ``resnapshot=False``, stops that dataset with an error.
   A checkpoint written before incarnations were recorded is resnapshotted
   once, since nothing proves it belongs to the dataset's current life.

Datasets are followed independently: one that fails (deleted, access
revoked, diverged without permission to resnapshot) is reported and stops,
the others go on; the agent then exits non-zero.

Killed at any instant, the local store holds some committed checkpoint and
exactly the rows it accounts for; a restart resumes from there, so nothing is
lost or applied twice. SIGTERM/SIGINT set a flag: the long poll in flight is
abandoned (it is only a read), the transaction in flight finishes, and the
agent exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from entrepot import jsonbody
from entrepot.aio import wait_event
from entrepot.client.http import Client, ClientError, FeedPage
from entrepot.sync.base import CannotMirror, FeedGap, Row, SchemaDrift, Target
from entrepot.sync.progress import Reporter
from entrepot.sync.targets import SQLiteTarget

SNAPSHOT_BATCH = 1_000
FATAL_STATUSES = frozenset({400, 401, 403, 404})
ONCE_FAILURES = 5
SCHEMA_CHECK_SECONDS = 15.0  # while following, for targets whose columns follow the schema


@dataclass(frozen=True)
class SyncOptions:
    datasets: Sequence[str]
    table_prefix: str = ""
    once: bool = False
    wait: float = 30.0
    page_size: int = 1000
    resnapshot: bool = True  # False: a mirror that cannot continue stops with an error


class Stopped(Exception):
    """The agent was asked to stop."""


class Diverged(Exception):
    """The feed cannot continue the mirror and resnapshotting is not allowed."""


class SyncFailed(Exception):
    """Some datasets stopped with an error (each was reported); the others were mirrored."""

    def __init__(self, failures: dict[str, BaseException]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"{name}: {_describe(exc)}" for name, exc in failures.items()))


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class DatasetFollower:
    def __init__(
        self,
        api: Client,
        target: Target,
        dataset: str,
        options: SyncOptions,
        reporter: Reporter,
        stop: asyncio.Event,
    ) -> None:
        self.api = api
        self.target = target
        self.dataset = dataset
        self.table = options.table_prefix + dataset
        self.options = options
        self.reporter = reporter
        self.stop = stop
        self.snapshots = 0
        self.schema_read = 0.0  # time.monotonic() when the schema was last read

    async def run(self) -> None:
        started = False
        seq: int | None = None
        incarnation: str | None = None
        failures = 0
        drifted: SchemaDrift | None = None
        while not self.stop.is_set():
            try:
                if not started:  # a 404/403 here is fatal, and says so before any work
                    stale = await self._read_schema()
                    checkpoint = await self.target.checkpoint(self.table)
                    if checkpoint is not None and stale:
                        self._diverged(stale)
                    elif checkpoint is not None and checkpoint.incarnation is None:
                        self._diverged(
                            f"the checkpoint (seq {checkpoint.seq}) predates incarnations"
                        )
                    elif checkpoint is not None:
                        seq, incarnation = checkpoint.seq, checkpoint.incarnation
                    started = True
                elif drifted is not None or self._schema_due():
                    stale = await self._read_schema()
                    if stale:
                        self._diverged(stale)
                        seq = None
                    elif drifted is not None:
                        raise CannotMirror(f"{drifted}, yet the dataset's schema is unchanged")
                    drifted = None
                if seq is None:
                    seq, incarnation = await self.snapshot()
                page = await self.poll(seq, incarnation)
                if page is None:
                    return
                if page.changes or page.last_seq > seq:
                    seq = await self.target.apply(
                        self.table, self.dataset, page.changes, page.last_seq
                    )
                    self.reporter.applied(self.dataset, seq, len(page.changes))
                elif self.options.once:
                    return
                failures = 0
            except Stopped:
                return
            except ClientError as exc:
                if exc.status == 410:
                    self._diverged(f"the feed cannot continue from seq {seq}: {exc}")
                    seq = None
                    continue
                if exc.status in FATAL_STATUSES:
                    raise
                failures += 1
                await self._backoff(failures, str(exc))
            except FeedGap as exc:
                self._diverged(f"the feed does not continue the mirror ({exc})")
                seq = None
            except SchemaDrift as exc:  # nothing of it was committed: read the schema again
                drifted = exc
            except (httpx.HTTPError, ValueError) as exc:  # a broken stream or a bad line
                failures += 1
                await self._backoff(failures, f"{type(exc).__name__}: {exc}")

    async def _read_schema(self) -> str | None:
        """Read the dataset (its schema as this credential sees it) and give it to the
        target; why the mirror's columns no longer fit it, or None."""
        dataset = await self.api.get_dataset(self.dataset)
        self.schema_read = time.monotonic()
        schema = dataset.get("schema")
        return await self.target.prepare(
            self.table, self.dataset, schema if isinstance(schema, dict) else {}
        )

    def _schema_due(self) -> bool:
        return (
            self.target.schema_bound
            and not self.options.once
            and time.monotonic() - self.schema_read >= SCHEMA_CHECK_SECONDS
        )

    def _diverged(self, why: str) -> None:
        """Resnapshot (the caller drops the checkpoint), or stop if that is not allowed."""
        if not self.options.resnapshot:
            raise Diverged(f"{why}; not resnapshotting (--no-resnapshot): the mirror is stale")
        self.reporter.notice(self.dataset, f"{why}: re-snapshotting")

    async def _backoff(self, failures: int, why: str) -> None:
        """Wait before retrying; with ``--once``, give up (exit 1) after a few failures."""
        if self.options.once and failures > ONCE_FAILURES:
            raise ClientError(0, "Giving up", f"{self.dataset}: {why}")
        delay = min(30.0, 0.5 * 2 ** min(failures, 6))
        self.reporter.notice(self.dataset, f"{why}; retrying in {delay:.1f}s")
        await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        await wait_event(self.stop, seconds)

    async def poll(self, after: int, incarnation: str | None) -> FeedPage | None:
        """One page after ``after``; None if asked to stop meanwhile (the read is dropped)."""
        wait = 0.0 if self.options.once else self.options.wait
        request = asyncio.ensure_future(
            self.api.changes(
                self.dataset,
                after,
                limit=self.options.page_size,
                wait=wait,
                incarnation=incarnation,
            )
        )
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            done, _ = await asyncio.wait({request, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if request not in done:
            request.cancel()
            await asyncio.gather(request, return_exceptions=True)
            return None
        return request.result()

    async def snapshot(self) -> tuple[int, str | None]:
        """Load the whole dataset and set the checkpoint atomically; the export's position."""
        self.snapshots += 1
        self.reporter.snapshot_started(self.dataset, None)
        rows = 0
        async with (
            self.api.export(self.dataset, envelope=True) as export,
            self.target.snapshot(self.table, self.dataset) as loader,
        ):
            batch: list[Row] = []
            async for item in export.records():
                batch.append(_row(item))
                if len(batch) >= SNAPSHOT_BATCH:
                    await loader.add(batch)
                    rows += len(batch)
                    batch = []
                    self.reporter.snapshot_progress(self.dataset, rows)
                    if self.stop.is_set():
                        raise Stopped
            if batch:
                await loader.add(batch)
                rows += len(batch)
            await loader.commit(export.seq, export.incarnation)
        self.reporter.snapshot_done(self.dataset, rows, export.seq)
        return export.seq, export.incarnation


def _row(item: dict[str, Any]) -> Row:
    try:
        return (str(item["id"]), int(item["version"]), jsonbody.dumps(item["data"]))
    except KeyError as exc:
        raise ValueError(
            f"export line without {exc}: does the server support envelope=true?"
        ) from None


async def _follow(follower: DatasetFollower, reporter: Reporter) -> None:
    """One dataset to the end; a failure is reported at once and stops only this one."""
    try:
        await follower.run()
    except (CannotMirror, ClientError, Diverged, OSError, ValueError) as exc:
        reporter.notice(follower.dataset, f"stopped: {_describe(exc)}")
        raise


async def run_sync(
    base_url: str,
    token: str | None,
    target: Target,
    options: SyncOptions,
    reporter: Reporter,
    *,
    handle_signals: bool = True,
) -> None:
    """Follow every dataset until stopped (or, with ``once``, until each feed is drained)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with Client(base_url, token) as api:
            followers = [
                DatasetFollower(api, target, name, options, reporter, stop)
                for name in options.datasets
            ]
            tasks = [asyncio.ensure_future(_follow(f, reporter)) for f in followers]
            try:
                outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            except BaseException:
                stop.set()  # let the others finish their transaction and return
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            failures: dict[str, BaseException] = {}
            for follower, outcome in zip(followers, outcomes, strict=True):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                if isinstance(outcome, BaseException):
                    failures[follower.dataset] = outcome
            if failures:
                raise SyncFailed(failures)
    finally:
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        await target.close()
        reporter.close()


__all__ = ["DatasetFollower", "Diverged", "SQLiteTarget", "SyncFailed", "SyncOptions", "run_sync"]
