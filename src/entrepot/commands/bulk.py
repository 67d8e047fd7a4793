"""``entrepot import`` and ``entrepot export``: streamed both ways, a chunk at a time.

Neither holds a file in memory: an import is read and sent 256 KiB at a time
(the SDK's ``import_records`` from a path), an export written as it arrives.
On a terminal, a progress bar shows records, records per second and (for an
import, whose size is known) the time left; piped or redirected, they are quiet.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from entrepot.client.models import Transfer
from entrepot.commands.errors import UsageProblem
from entrepot.commands.session import Session, api_command


class Format(StrEnum):
    ndjson = "ndjson"
    csv = "csv"


class ExportFormat(StrEnum):
    ndjson = "ndjson"
    csv = "csv"
    parquet = "parquet"
    arrow = "arrow"


class Mode(StrEnum):
    insert = "insert"
    upsert = "upsert"


class OnError(StrEnum):
    abort = "abort"
    skip = "skip"


# Top-level commands (entrepot import, entrepot export), merged into the root app.
commands = typer.Typer(rich_markup_mode=None)

Dataset = Annotated[
    str, typer.Argument(metavar="DATASET", help="Dataset name.", show_default=False)
]


class RowsColumn(ProgressColumn):
    """Records so far and records per second (the task's ``rows`` field)."""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        elapsed = task.elapsed or 0.0
        rate = rows / elapsed if elapsed > 0 else 0.0
        return Text(f"{rows:,} records  {rate:,.0f} records/s", style="progress.data.speed")


@contextmanager
def progress_bar(
    label: str, total: int | None, *, rows: bool = True
) -> Iterator[tuple[Progress, TaskID]]:
    """A bar on stderr when it is a terminal; otherwise nothing is shown. ``rows``: count
    records (lines), which a Parquet or Arrow file has none of."""
    console = Console(stderr=True)
    columns: list[str | ProgressColumn] = [TextColumn("[bold]{task.description}")]
    if total is not None:
        columns += [BarColumn(), DownloadColumn(), TimeRemainingColumn()]
    else:
        columns += [DownloadColumn(), TimeElapsedColumn()]
    if rows:
        columns.append(RowsColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        yield progress, progress.add_task(label, total=total, rows=0)


def _advance(
    progress: Progress, task: TaskID, label: str, total: int | None = None
) -> Callable[[Transfer], None]:
    def update(transfer: Transfer) -> None:
        sent = total is not None and transfer.bytes >= total
        progress.update(
            task,
            completed=transfer.bytes,
            rows=transfer.records,
            description=f"{label} (saving)" if sent else label,
        )

    return update


@api_command(commands, "import")
def import_(
    session: Session,
    dataset: Dataset,
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="NDJSON or CSV file."),
    ],
    mode: Annotated[Mode, typer.Option("--mode", help="insert refuses existing ids.")] = (
        Mode.insert
    ),
    on_error: Annotated[
        OnError,
        typer.Option("--on-error", help="abort: all or nothing; skip: keep the good lines."),
    ] = OnError.abort,
    fmt: Annotated[
        Format | None, typer.Option("--format", help="[default: csv for *.csv, else ndjson]")
    ] = None,
) -> None:
    """Import a file of records in bulk; prints the report (inserted, updated, failed)."""
    size = file.stat().st_size
    with progress_bar(dataset, size) as (progress, task):
        report = session.api.import_records(
            dataset,
            file,
            format=fmt.value if fmt else None,
            mode=mode.value,
            on_error=on_error.value,
            progress=_advance(progress, task, dataset, size),
        )
    session.printer.one(report)


@api_command(commands, "export", output=False)
def export(
    session: Session,
    dataset: Dataset,
    to: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write [default: stdout].")
    ] = None,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="Lines of JSON, CSV, or for analytics a Parquet file or an Arrow IPC stream "
            "(typed columns: _id, _version, then one a property).",
        ),
    ] = ExportFormat.ndjson,
    envelope: Annotated[
        bool,
        typer.Option("--envelope", help="NDJSON lines of {id, version, data}, not bare data."),
    ] = False,
    spreadsheet_safe: Annotated[
        bool,
        typer.Option(
            "--spreadsheet-safe",
            help="With --format csv, for opening in Excel, LibreOffice or Google Sheets: text "
            "cells starting with =, +, -, @, tab or carriage return get a leading ' so they "
            "are not run as formulas. Such a file no longer imports back unchanged.",
        ),
    ] = False,
) -> None:
    """Export every record (NDJSON, CSV, Parquet or Arrow), streamed to a file or stdout."""
    if spreadsheet_safe and fmt is not ExportFormat.csv:
        raise UsageProblem("--spreadsheet-safe needs --format csv")
    if envelope and fmt is not ExportFormat.ndjson:
        raise UsageProblem("--envelope needs --format ndjson")
    lines = fmt in (ExportFormat.ndjson, ExportFormat.csv)
    with progress_bar(dataset, None, rows=lines) as (progress, task):
        result = session.api.export(
            dataset,
            to if to is not None else sys.stdout.buffer,
            format=fmt.value,
            envelope=envelope,
            spreadsheet_safe=spreadsheet_safe,
            progress=_advance(progress, task, dataset),
        )
    if to is None:
        sys.stdout.buffer.flush()
    else:
        what = (
            f"{result.records:,} lines" if result.records is not None else f"{result.bytes:,} bytes"
        )
        session.printer.done(f"Exported {what} of {dataset} to {to} (feed seq {result.seq})")
