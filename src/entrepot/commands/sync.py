"""``entrepot sync``: the mirroring agent (entrepot.sync), behind the shared options."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, NoReturn

import typer

from entrepot.client.errors import ConnectionFailed, problem_from_document
from entrepot.client.http import ClientError
from entrepot.commands.errors import EXIT_API, UsageProblem
from entrepot.commands.session import Session, api_command
from entrepot.sync.agent import SyncFailed, SyncOptions, run_sync
from entrepot.sync.base import TargetUnavailable
from entrepot.sync.progress import reporter_for
from entrepot.sync.targets import open_target

commands = typer.Typer(rich_markup_mode=None)


@api_command(commands, "sync", output=False)
def sync(
    session: Session,
    datasets: Annotated[list[str], typer.Argument(metavar="DATASET", help="Datasets to mirror.")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="sqlite:///PATH (sqlite:////abs/path), postgresql://... or "
            "mysql://USER:PASSWORD@HOST:PORT/DB (also mariadb://).",
        ),
    ],
    table_prefix: Annotated[
        str, typer.Option("--table-prefix", help="Prefix for the local table names.")
    ] = "",
    once: Annotated[
        bool, typer.Option("--once", help="Catch up (snapshot if needed, then the feed) and exit.")
    ] = False,
    wait: Annotated[
        float, typer.Option("--wait", min=0, max=60, help="Long-poll seconds while following.")
    ] = 30.0,
    resnapshot: Annotated[
        bool,
        typer.Option(
            "--resnapshot/--no-resnapshot",
            help="When the feed cannot continue a mirror (compacted away, or the dataset was "
            "deleted and created again), reload it from an export; with --no-resnapshot, stop "
            "mirroring that dataset with an error instead.",
        ),
    ] = True,
) -> None:
    """Mirror datasets into a SQLite file, PostgreSQL or MySQL/MariaDB and keep them in sync.

    Each dataset becomes a table (id, version, data); in MySQL, also one typed
    column per top-level property of its schema (docs/sync.md lists the types,
    and a schema MySQL cannot hold stops that dataset before anything is
    written). Its feed checkpoint is stored in entrepot_sync_checkpoints in
    the same transaction as the rows, so the agent can be killed at any moment
    and restarted without loss or duplication. SIGTERM/SIGINT finish the
    current transaction and exit 0.
    A dataset that fails (deleted, access revoked, or diverged with
    --no-resnapshot) is reported and stops while the others go on; the
    command then exits 1.
    """
    options = SyncOptions(
        datasets=datasets, table_prefix=table_prefix, once=once, wait=wait, resnapshot=resnapshot
    )
    connection = session.connection
    console = session.printer.err

    async def main() -> None:
        target = await open_target(to)
        await run_sync(connection.url, connection.token, target, options, reporter_for(console))

    try:
        asyncio.run(main())
    except ClientError as exc:
        raise _sdk_error(exc) from None
    except SyncFailed as exc:
        causes = [e for e in exc.failures.values() if isinstance(e, ClientError)]
        alike = len(causes) == len(exc.failures) and len({e.status for e in causes}) == 1
        if alike and causes[0].status in (0, 401, 403):  # all stopped alike: with its hint
            raise _sdk_error(causes[0]) from None
        _stopped(str(exc))
    except TargetUnavailable as exc:
        _stopped(str(exc))
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


def _stopped(why: str) -> NoReturn:
    sys.stderr.write(f"entrepot: sync stopped: {why}\n")
    raise typer.Exit(EXIT_API)


def _sdk_error(exc: ClientError) -> Exception:
    """The SDK's own error for the agent's, so the boundary explains it as for any command."""
    if isinstance(exc.__cause__, ConnectionFailed):
        return exc.__cause__
    if exc.status:
        return problem_from_document(exc.status, exc.body or {"title": exc.title})
    _stopped(str(exc))
