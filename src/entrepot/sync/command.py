"""The ``entrepot sync`` command."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from entrepot.client.commands import TokenOption, UrlOption
from entrepot.client.http import ClientError
from entrepot.sync.agent import SyncFailed, SyncOptions, run_sync
from entrepot.sync.progress import reporter_for
from entrepot.sync.targets import open_target


def sync(
    datasets: list[str] = typer.Argument(..., help="Datasets to mirror."),
    to: str = typer.Option(
        ..., "--to", help="sqlite:///PATH (sqlite:////abs/path) or postgresql://..."
    ),
    table_prefix: str = typer.Option("", help="Prefix for the local table names."),
    once: bool = typer.Option(
        False, "--once", help="Catch up (snapshot if needed, then the feed) and exit."
    ),
    wait: float = typer.Option(30.0, min=0, max=60, help="Long-poll seconds while following."),
    resnapshot: bool = typer.Option(
        True,
        "--resnapshot/--no-resnapshot",
        help="When the feed cannot continue a mirror (compacted away, or the dataset was "
        "deleted and created again), reload it from an export; with --no-resnapshot, stop "
        "mirroring that dataset with an error instead.",
    ),
    url: str = UrlOption,
    token: str | None = TokenOption,
) -> None:
    """Mirror datasets into a local SQLite file or PostgreSQL database and keep them in sync.

    Each dataset becomes a table (id, version, data); its feed checkpoint is
    stored in entrepot_sync_checkpoints in the same transaction as the rows,
    so the agent can be killed at any moment and restarted without loss or
    duplication. SIGTERM/SIGINT finish the current transaction and exit 0.
    A dataset that fails (deleted, access revoked, or diverged with
    --no-resnapshot) is reported and stops while the others go on; the
    command then exits 1.
    """
    console = Console(stderr=True)
    options = SyncOptions(
        datasets=datasets, table_prefix=table_prefix, once=once, wait=wait, resnapshot=resnapshot
    )

    async def main() -> None:
        target = await open_target(to)
        await run_sync(url, token, target, options, reporter_for(console))

    try:
        asyncio.run(main())
    except (ClientError, SyncFailed) as exc:
        console.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(1) from None
    except ValueError as exc:
        console.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(2) from None
