"""What the agent shows: Rich bars and a status line on a terminal, a few plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class Reporter(Protocol):
    def snapshot_started(self, dataset: str, total: int | None) -> None: ...

    def snapshot_progress(self, dataset: str, rows: int) -> None: ...

    def snapshot_done(self, dataset: str, rows: int, seq: int) -> None: ...

    def applied(self, dataset: str, seq: int, count: int) -> None: ...

    def notice(self, dataset: str, message: str) -> None: ...

    def close(self) -> None: ...


class PlainReporter:
    """Not a terminal: one line per snapshot, re-snapshot or error; nothing per page."""

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose

    def _say(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        print(f"{stamp} {text}", file=sys.stderr, flush=True)

    def snapshot_started(self, dataset: str, total: int | None) -> None:
        self._say(f"{dataset}: snapshot started")

    def snapshot_progress(self, dataset: str, rows: int) -> None:
        pass

    def snapshot_done(self, dataset: str, rows: int, seq: int) -> None:
        self._say(f"{dataset}: snapshot of {rows} records loaded at seq {seq}")

    def applied(self, dataset: str, seq: int, count: int) -> None:
        if self.verbose:
            self._say(f"{dataset}: applied {count} changes, now at seq {seq}")

    def notice(self, dataset: str, message: str) -> None:
        self._say(f"{dataset}: {message}")

    def close(self) -> None:
        pass


class RichReporter:
    """A progress bar per snapshot, then a live status line per dataset."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[dataset]}[/bold]"),
            BarColumn(),
            TextColumn("{task.completed:,.0f} records"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.applied_total: dict[str, int] = {}
        self.progress.start()

    def _task(self, dataset: str) -> TaskID:
        if dataset not in self.tasks:
            self.tasks[dataset] = self.progress.add_task(
                "", dataset=dataset, status="starting", total=None
            )
        return self.tasks[dataset]

    def snapshot_started(self, dataset: str, total: int | None) -> None:
        task = self._task(dataset)
        self.progress.reset(task, total=total, dataset=dataset, status="snapshot")

    def snapshot_progress(self, dataset: str, rows: int) -> None:
        self.progress.update(self._task(dataset), completed=rows)

    def snapshot_done(self, dataset: str, rows: int, seq: int) -> None:
        self.progress.update(
            self._task(dataset), completed=rows, total=rows, status=f"loaded at seq {seq}"
        )

    def applied(self, dataset: str, seq: int, count: int) -> None:
        done = self.applied_total.get(dataset, 0) + count
        self.applied_total[dataset] = done
        self.progress.update(
            self._task(dataset), status=f"following: seq {seq}, {done:,} changes applied"
        )

    def notice(self, dataset: str, message: str) -> None:
        self.progress.console.print(f"[yellow]{dataset}[/yellow]: {message}")

    def close(self) -> None:
        self.progress.stop()


def reporter_for(console: Console | None = None) -> Reporter:
    console = console or Console(stderr=True)
    return RichReporter(console) if console.is_terminal else PlainReporter()
