"""The ``entrepot`` command."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import typer
import uvicorn

from entrepot import __version__
from entrepot.logging import configure as configure_logging
from entrepot.settings import Settings

app = typer.Typer(
    help="Entrepot: an open data platform. Settings come from ENTREPOT_* variables.",
    no_args_is_help=True,
    add_completion=False,
)


@contextmanager
def _store_url(settings: Settings) -> Iterator[str]:
    """The store URL; without ENTREPOT_DATABASE_URL, run the embedded PostgreSQL meanwhile."""
    if settings.database_url:
        yield settings.database_url
        return
    from entrepot.store.embedded import (
        DATABASE_NAME,
        EmbeddedPostgres,
        ensure_database,
        with_database,
    )

    embedded = EmbeddedPostgres(settings.data_dir)
    admin_url = embedded.start()
    typer.echo(f"Embedded PostgreSQL running under {embedded.pgdata}", err=True)
    try:
        asyncio.run(ensure_database(admin_url, DATABASE_NAME))
        yield with_database(admin_url, DATABASE_NAME)
    finally:
        embedded.stop()
        typer.echo("Embedded PostgreSQL stopped", err=True)


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so cleanups run (uvicorn re-raises it on exit)."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)


async def _prepare(url: str, settings: Settings) -> str | None:
    from entrepot.auth.bootstrap import bootstrap
    from entrepot.store.migrate import migrate

    await migrate(url)
    token = settings.bootstrap_token.get_secret_value() if settings.bootstrap_token else None
    return await bootstrap(url, token)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind (default ENTREPOT_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default ENTREPOT_PORT or 8000)."),
    workers: int = typer.Option(None, help="Worker processes (default ENTREPOT_WORKERS or 1)."),
) -> None:
    """Migrate the store and serve the API (embedded PostgreSQL unless ENTREPOT_DATABASE_URL)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    _exit_on_sigterm()
    with _store_url(settings) as url:
        os.environ["ENTREPOT_DATABASE_URL"] = url
        generated = asyncio.run(_prepare(url, settings))
        if generated:
            typer.echo(
                "\nFirst start: a platform-admin API key was created. It is shown only now:\n\n"
                f"    {generated}\n\nStore it safely; use it as 'Authorization: Bearer <key>'.\n",
                err=True,
            )
        typer.echo(
            f"Entrepot {__version__} serving on http://{host}:{port} (docs at /docs)", err=True
        )
        uvicorn.run(
            "entrepot.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            log_config=None,
            access_log=False,
            proxy_headers=True,
            timeout_graceful_shutdown=30,
        )


@app.command()
def migrate() -> None:
    """Bring the store schema up to date (under an advisory lock; safe to run concurrently)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    from entrepot.store.migrate import migrate as run_migrations

    with _store_url(settings) as url:
        applied = asyncio.run(run_migrations(url))
    typer.echo(f"Applied migrations: {applied or 'none (up to date)'}", err=True)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _client_commands() -> None:
    """Commands that talk to a server (--url/ENTREPOT_URL, --token/ENTREPOT_TOKEN)."""
    from entrepot.client.commands import datasets_app, export, import_
    from entrepot.sync.command import sync

    app.add_typer(datasets_app, name="datasets")
    app.command("export")(export)
    app.command("import")(import_)
    app.command("sync")(sync)


_client_commands()


def main() -> None:
    app()
