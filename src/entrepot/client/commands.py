"""Client commands: ``entrepot datasets list|get``, ``entrepot export``, ``entrepot import``.

They talk to a server given by ``--url``/``ENTREPOT_URL`` with
``--token``/``ENTREPOT_TOKEN``; long transfers show a progress bar on a
terminal. Problems from the server are printed (title, detail, field errors)
and exit with status 1.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from entrepot.client.http import Client, ClientError

T = TypeVar("T")

UrlOption: Any = typer.Option(
    "http://127.0.0.1:8000", "--url", envvar="ENTREPOT_URL", help="Server base URL."
)
TokenOption: Any = typer.Option(
    None, "--token", envvar="ENTREPOT_TOKEN", help="API key or OAuth access token."
)

datasets_app = typer.Typer(help="Browse the catalog.", no_args_is_help=True)


def _console() -> Console:
    return Console(stderr=True)


def _run(work: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except ClientError as exc:
        console = _console()
        console.print(f"[red]{exc.status} {exc.title}[/red]: {exc.detail}")
        for error in exc.errors[:20]:
            console.print(f"  {error.get('path', '')}: {error.get('message', error)}")
        raise typer.Exit(1) from None


def _bytes_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


@datasets_app.command("list")
def list_datasets(
    q: str | None = typer.Option(None, help="Full-text search."),
    org: str | None = typer.Option(None, help="Only this organisation's datasets."),
    tag: str | None = typer.Option(None, help="Only datasets with this tag."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object a line."),
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """List the datasets you may see."""

    async def work() -> list[dict[str, Any]]:
        async with Client(url, token) as api:
            return [d async for d in api.list_datasets(q=q, org=org, tag=tag)]

    found = _run(work)
    if as_json:
        for item in found:
            typer.echo(json.dumps(item, ensure_ascii=False))
        return
    table = Table("name", "org", "title", "visibility", "primary key")
    for item in found:
        table.add_row(
            item["name"],
            item["org"],
            item["title"],
            item["visibility"],
            item.get("primary_key") or "",
        )
    Console().print(table)


@datasets_app.command("get")
def get_dataset(
    name: str = typer.Argument(..., help="Dataset name."),
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Print one dataset's metadata as JSON."""

    async def work() -> dict[str, Any]:
        async with Client(url, token) as api:
            return await api.get_dataset(name)

    typer.echo(json.dumps(_run(work), indent=2, ensure_ascii=False))


def export(
    dataset: str = typer.Argument(..., help="Dataset name."),
    output: Path | None = typer.Option(None, "-o", "--output", help="File (default stdout)."),
    fmt: str = typer.Option("ndjson", "--format", help="ndjson or csv."),
    spreadsheet_safe: bool = typer.Option(
        False,
        "--spreadsheet-safe",
        help="With --format csv, for opening in Excel, LibreOffice or Google Sheets: text "
        "cells starting with =, +, -, @, tab or carriage return get a leading ' so they are "
        "not run as formulas. Such a file no longer imports back unchanged.",
    ),
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Export every record (NDJSON or CSV), streamed to a file or stdout."""
    if fmt not in ("ndjson", "csv"):
        raise typer.BadParameter("--format must be ndjson or csv")
    if spreadsheet_safe and fmt != "csv":
        raise typer.BadParameter("--spreadsheet-safe needs --format csv")
    console = _console()

    async def work() -> int:
        api = Client(url, token)
        if spreadsheet_safe:  # Client.export has no CSV style: a client-wide query parameter
            api.http.params = api.http.params.set("csv", "spreadsheet")
        async with api, api.export(dataset, fmt=fmt) as stream:
            sink = output.open("wb") if output else sys.stdout.buffer
            try:
                with _bytes_progress(console) as progress:
                    task = progress.add_task(dataset, total=None)
                    async for chunk in stream.chunks():
                        sink.write(chunk)
                        progress.advance(task, len(chunk))
            finally:
                if output:
                    sink.close()
                else:
                    sink.flush()
            return stream.seq

    seq = _run(work)
    if output:
        console.print(f"Exported {dataset} to {output} (feed seq {seq})")


def import_(
    dataset: str = typer.Argument(..., help="Dataset name."),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="NDJSON or CSV file."),
    mode: str = typer.Option("insert", help="insert or upsert."),
    on_error: str = typer.Option("abort", help="abort (all or nothing) or skip."),
    fmt: str | None = typer.Option(None, "--format", help="ndjson or csv (default: by suffix)."),
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Import a file of records in bulk, with a progress bar."""
    if mode not in ("insert", "upsert") or on_error not in ("abort", "skip"):
        raise typer.BadParameter("--mode is insert|upsert, --on-error is abort|skip")
    console = _console()
    size = file.stat().st_size

    async def work() -> dict[str, Any]:
        async with Client(url, token) as api:
            with _bytes_progress(console) as progress:
                task = progress.add_task(dataset, total=size)
                return await api.import_file(
                    dataset,
                    file,
                    fmt=fmt,
                    mode=mode,
                    on_error=on_error,
                    progress=lambda n: progress.advance(task, n),
                )

    report = _run(work)
    typer.echo(json.dumps(report, ensure_ascii=False))
