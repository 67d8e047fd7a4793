"""The sync agent: snapshot by export, then follow the change feed, checkpointed locally.

Per dataset, the loop is:

1. No checkpoint (first run, or after a 410): open the export with
   ``envelope=true`` (lines ``{id, version, data}``), stage its rows, then
   replace the table and set the checkpoint to the export's
   ``X-Entrepot-Seq`` in one local transaction. The server reads that seq in
   the same REPEATABLE READ snapshot it exports, and seqs are assigned in
   commit order, so the table then holds exactly the changes up to it.
2. Long-poll ``/changes?after=<checkpoint>&wait=``; apply each page and move
   the checkpoint in one local transaction (see :mod:`entrepot.sync.targets`).
3. A 410 (the cursor was compacted away) drops back to 1.

Killed at any instant, the local store holds some committed checkpoint and
exactly the rows it accounts for; a restart resumes from there, so nothing is
lost or applied twice. SIGTERM/SIGINT set a flag: the long poll in flight is
abandoned (it is only a read), the transaction in flight finishes, and the
agent exits 0.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from entrepot import jsonbody
from entrepot.aio import wait_event
from entrepot.client import Client, ClientError, FeedPage
from entrepot.sync.progress import Reporter
from entrepot.sync.targets import FeedGap, Row, SQLiteTarget, Target

SNAPSHOT_BATCH = 1_000
FATAL_STATUSES = frozenset({400, 401, 403, 404})
ONCE_FAILURES = 5


@dataclass(frozen=True)
class SyncOptions:
    datasets: Sequence[str]
    table_prefix: str = ""
    once: bool = False
    wait: float = 30.0
    page_size: int = 1000


class Stopped(Exception):
    """The agent was asked to stop."""


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

    async def run(self) -> None:
        started = False
        seq: int | None = None
        failures = 0
        while not self.stop.is_set():
            try:
                if not started:  # a 404/403 here is fatal, and says so before any work
                    await self.api.get_dataset(self.dataset)
                    await self.target.prepare(self.table, self.dataset)
                    seq = await self.target.checkpoint(self.table)
                    started = True
                if seq is None:
                    seq = await self.snapshot()
                page = await self.poll(seq)
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
                    self.reporter.notice(
                        self.dataset,
                        f"cursor {seq} was compacted away (min_seq "
                        f"{exc.body.get('min_seq')}): re-snapshotting",
                    )
                    seq = None
                    continue
                if exc.status in FATAL_STATUSES:
                    raise
                failures += 1
                await self._backoff(failures, str(exc))
            except FeedGap as exc:
                self.reporter.notice(self.dataset, f"feed gap ({exc}): re-snapshotting")
                seq = None
            except (httpx.HTTPError, ValueError) as exc:  # a broken stream or a bad line
                failures += 1
                await self._backoff(failures, f"{type(exc).__name__}: {exc}")

    async def _backoff(self, failures: int, why: str) -> None:
        """Wait before retrying; with ``--once``, give up (exit 1) after a few failures."""
        if self.options.once and failures > ONCE_FAILURES:
            raise ClientError(0, "Giving up", f"{self.dataset}: {why}")
        delay = min(30.0, 0.5 * 2 ** min(failures, 6))
        self.reporter.notice(self.dataset, f"{why}; retrying in {delay:.1f}s")
        await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        await wait_event(self.stop, seconds)

    async def poll(self, after: int) -> FeedPage | None:
        """One page after ``after``; None if asked to stop meanwhile (the read is dropped)."""
        wait = 0.0 if self.options.once else self.options.wait
        request = asyncio.ensure_future(
            self.api.changes(self.dataset, after, limit=self.options.page_size, wait=wait)
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

    async def snapshot(self) -> int:
        """Load the whole dataset and set the checkpoint atomically; the export's seq."""
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
            await loader.commit(export.seq)
        self.reporter.snapshot_done(self.dataset, rows, export.seq)
        return export.seq


def _row(item: dict[str, Any]) -> Row:
    try:
        return (str(item["id"]), int(item["version"]), jsonbody.dumps(item["data"]))
    except KeyError as exc:
        raise ValueError(
            f"export line without {exc}: does the server support envelope=true?"
        ) from None


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
            tasks = [asyncio.ensure_future(f.run()) for f in followers]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                stop.set()  # let the others finish their transaction and return
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
    finally:
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        await target.close()
        reporter.close()


__all__ = ["DatasetFollower", "SQLiteTarget", "SyncOptions", "run_sync"]
