"""The ``entrepot`` command.

``main`` is its one error boundary: a bad setting or a store that cannot be
used ends in one line on stderr saying what to fix (exit 2 for settings, 1 for
the store), never a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
import getpass
import math
import os
import signal
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import typer
import uvicorn

from entrepot import __version__
from entrepot.cli_errors import explain
from entrepot.first_key import FirstKeyNotice
from entrepot.logging import configure as configure_logging
from entrepot.settings import Settings

if TYPE_CHECKING:
    from entrepot.auth.admin_keys import AdminKey
    from entrepot.store.capacity import Limit

T = TypeVar("T")
KEY_NAME_MAX = 100  # as for the API keys of apps

# The store the running command reaches; set by _store_url, read by the error boundary,
# so connection errors are blamed on PostgreSQL only when PostgreSQL was being reached.
_store: ContextVar[str | None] = ContextVar("entrepot_store_url", default=None)
_store_setting: ContextVar[str] = ContextVar(
    "entrepot_store_setting", default="ENTREPOT_DATABASE_URL"
)

# Plain Click help (rich_markup_mode=None) in every group: a flag shows no value placeholder
# and a choice lists its values (Typer's Rich help prints a type such as <bool> after flags).
app = typer.Typer(
    rich_markup_mode=None,
    help="Entrepot: an open data platform. Settings come from ENTREPOT_* variables.",
    no_args_is_help=True,
    add_completion=True,
)
admin_app = typer.Typer(
    rich_markup_mode=None,
    help="Operator commands, run where the store is reachable; no server needed.",
    no_args_is_help=True,
)
app.add_typer(admin_app, name="admin")
streams_app = typer.Typer(
    rich_markup_mode=None,
    help="Which change feeds the replicas publish into NATS JetStream (ENTREPOT_NATS_URL; "
    "docs/jetstream.md). Reaches the store as migrate does; no server needed.",
    no_args_is_help=True,
)
admin_app.add_typer(streams_app, name="streams")


@contextmanager
def _store_url(settings: Settings) -> Iterator[str]:
    """The store URL; without ENTREPOT_DATABASE_URL, run the embedded PostgreSQL meanwhile."""
    if settings.database_url:
        _store.set(settings.database_url)
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
    _store.set(admin_url)
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


def _reaching(url: str, setting: str) -> str:
    """Note the store about to be reached, for the error boundary's messages."""
    _store.set(url)
    _store_setting.set(setting)
    return url


def _direct(settings: Settings, url: str) -> str:
    """The server itself, for session-bound work (migrations under their advisory lock,
    the start-up check): ENTREPOT_DIRECT_DATABASE_URL when a pooler is in front."""
    if settings.direct_database_url:
        return _reaching(settings.direct_database_url, "ENTREPOT_DIRECT_DATABASE_URL")
    return _reaching(url, "ENTREPOT_DATABASE_URL")


def _check_connections(settings: Settings, url: str, workers: int | None) -> Limit | None:
    """The start-up check on the server itself, then, behind a pooler, the timeouts its
    sessions run with (asked through it). Each store is noted before it is reached."""
    from entrepot.store.capacity import check, check_pooled_timeouts

    limit = asyncio.run(check(settings, _direct(settings, url), workers))
    if settings.pooler == "transaction" and settings.connection_check:
        asyncio.run(check_pooled_timeouts(settings, _reaching(url, "ENTREPOT_DATABASE_URL")))
    return limit


async def _prepare(url: str, settings: Settings) -> str | None:
    """Migrate and bootstrap, on the server itself."""
    from entrepot.auth.bootstrap import bootstrap
    from entrepot.store.migrate import migrate

    await migrate(
        url,
        lock_timeout_ms=settings.migration_lock_timeout_ms,
        lock_attempts=settings.migration_lock_attempts,
    )
    token = settings.bootstrap_token.get_secret_value() if settings.bootstrap_token else None
    return await bootstrap(url, token)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind (default ENTREPOT_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default ENTREPOT_PORT or 8000)."),
    workers: int = typer.Option(None, help="Worker processes (default ENTREPOT_WORKERS or 1)."),
) -> None:
    """Migrate the store and serve the API (embedded PostgreSQL unless ENTREPOT_DATABASE_URL).

    Refuses to start, in one line, when PostgreSQL has no room for the replica's
    connection budget (see `entrepot budget`; ENTREPOT_CONNECTION_CHECK=false skips it).
    """
    from entrepot.ops.metrics_server import metrics_listener

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    _exit_on_sigterm()
    with _store_url(settings) as url:
        os.environ["ENTREPOT_DATABASE_URL"] = url
        _check_connections(settings, url, workers)
        generated = asyncio.run(_prepare(_direct(settings, url), settings))
        notice = FirstKeyNotice(generated, host, port) if generated else None
        if notice is not None:
            notice.when_serving()
        metrics_host = settings.metrics_host or host
        with metrics_listener(metrics_host, settings.metrics_port, workers):
            if settings.metrics_port is not None:
                typer.echo(
                    f"Metrics on http://{metrics_host}:{settings.metrics_port}/metrics", err=True
                )
            typer.echo(
                f"Entrepot {__version__} serving on http://{host}:{port} (docs at /docs)", err=True
            )
            try:
                uvicorn.run(
                    "entrepot.app:app_from_env",
                    factory=True,
                    host=host,
                    port=port,
                    workers=workers,
                    loop="uvloop",
                    http="entrepot.server_protocol:AbortableHttpToolsProtocol",
                    log_config=None,
                    access_log=False,
                    proxy_headers=True,
                    timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout_seconds),
                )
            finally:
                if notice is not None:
                    notice.show()  # the server never came up: the key must not be lost


@app.command()
def migrate() -> None:
    """Bring the store schema up to date (under an advisory lock; safe to run concurrently)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    from entrepot.store.migrate import migrate as run_migrations

    with _store_url(settings) as url:
        applied = asyncio.run(
            run_migrations(
                _direct(settings, url),
                lock_timeout_ms=settings.migration_lock_timeout_ms,
                lock_attempts=settings.migration_lock_attempts,
            )
        )
    typer.echo(f"Applied migrations: {applied or 'none (up to date)'}", err=True)


@admin_app.command("create-key")
def create_key(
    name: str = typer.Option(
        "cli admin", help=f"A name for people, 1 to {KEY_NAME_MAX} characters."
    ),
) -> None:
    """Create a platform-admin API key and print it once, alone on stdout (a lost key's cure).

    Reaches the store as serve and migrate do (ENTREPOT_DATABASE_URL, else the
    embedded PostgreSQL under ENTREPOT_DATA_DIR) and migrates it if needed.
    """
    name = name.strip()
    if not 1 <= len(name) <= KEY_NAME_MAX:
        raise typer.BadParameter(f"1 to {KEY_NAME_MAX} characters", param_hint="'--name'")
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    with _store_url(settings) as url:
        created = asyncio.run(_create_admin_key(_direct(settings, url), name, settings))
    typer.echo(
        f"Created platform-admin API key {created.id} ({created.name!r}), audited as "
        "admin_key.created. It is shown only now; use it as 'Authorization: Bearer <key>'.",
        err=True,
    )
    typer.echo(created.secret)


async def _create_admin_key(url: str, name: str, settings: Settings) -> AdminKey:
    from entrepot.auth.admin_keys import create_admin_key
    from entrepot.store.migrate import migrate

    await migrate(
        url,
        lock_timeout_ms=settings.migration_lock_timeout_ms,
        lock_attempts=settings.migration_lock_attempts,
    )
    return await create_admin_key(url, name=name, os_user=_os_user())


def _os_user() -> str:
    """Who ran the command, for the audit row; a container may run as a uid with no name."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid:{os.getuid()}"


@streams_app.command("add")
def add_stream(
    dataset: str = typer.Argument(..., help="The dataset whose change feed is published."),
    grant: str = typer.Option(
        None,
        help="A grant id: the stream carries only what that grant lets its app see, and "
        "ends when it is revoked or expires. Without: full records (the provider's own "
        "systems).",
    ),
    stream: str = typer.Option(
        None,
        help="The JetStream stream's name (created by the publisher). Default: "
        "entrepot_DATASET, or entrepot_DATASET_grant_ID.",
    ),
    subject: str = typer.Option(
        None,
        help="The subject messages go to. Default: entrepot.DATASET.changes, or "
        "entrepot.DATASET.grant.ID.",
    ),
) -> None:
    """Publish a dataset's change feed into a JetStream stream; prints the stream (JSON)."""
    grant_id = _uuid(grant, "--grant") if grant else None
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    from entrepot.streams import admin

    with _store_url(settings) as url:
        added = _problem_to_exit(
            admin.add(
                _direct(settings, url),
                dataset,
                grant=grant_id,
                stream=stream,
                subject=subject,
                os_user=_os_user(),
            )
        )
    typer.echo(orjson.dumps(added).decode())
    if not settings.nats_url:
        typer.echo(
            "Configured; nothing is published until the replicas run with ENTREPOT_NATS_URL.",
            err=True,
        )


@streams_app.command("list")
def list_streams() -> None:
    """Print every configured stream, ended ones too, one JSON object a line."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    from entrepot.streams import admin

    with _store_url(settings) as url:
        rows = asyncio.run(admin.listing(_direct(settings, url)))
    for row in rows:
        typer.echo(orjson.dumps(row).decode())


@streams_app.command("end")
def end_stream(
    stream_id: str = typer.Argument(..., help="The stream's id (entrepot admin streams list)."),
) -> None:
    """Stop publishing to a stream (what JetStream holds stays); prints it (JSON)."""
    parsed = _uuid(stream_id, "STREAM_ID")
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    from entrepot.streams import admin

    with _store_url(settings) as url:
        ended = _problem_to_exit(admin.end(_direct(settings, url), parsed, os_user=_os_user()))
    typer.echo(orjson.dumps(ended).decode())


def _uuid(value: str, hint: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter("not an id (a UUID)", param_hint=f"'{hint}'") from None


def _problem_to_exit(work: Coroutine[Any, Any, T]) -> T:
    """Run an operator use case; a refusal (a Problem: no such dataset, a name taken)
    is one line and exit status 1."""
    from entrepot.problems import Problem

    try:
        return asyncio.run(work)
    except Problem as problem:
        typer.echo(f"entrepot: {problem.detail}", err=True)
        raise typer.Exit(1) from None


@app.command()
def budget(
    workers: int = typer.Option(
        None, min=1, help="Worker processes per replica (default ENTREPOT_WORKERS or 1)."
    ),
    replicas: int = typer.Option(
        1, min=1, help="Replicas to add up: the autoscaler's maximum plus its surge."
    ),
    check: bool = typer.Option(
        False, "--check", help="Also ask PostgreSQL, as serve does, whether one replica fits now."
    ),
) -> None:
    """Print the PostgreSQL connections a worker and a replica may open (the connection
    budget), from the ENTREPOT_* settings; serve refuses to start when they do not fit."""
    from entrepot.store.budget import Budget, describe

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    spent = Budget.of(settings, workers)
    for line in describe(spent, replicas):
        typer.echo(line)
    if not check:
        return
    with _store_url(settings) as url:
        limit = _check_connections(settings, url, workers)
    if limit is not None:
        typer.echo(
            f"fits: {spent.direct_per_replica} of the {limit.free} free on {limit.what}"
            f" ({limit.allowed} allowed, {limit.in_use} in use)"
        )


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _client_commands() -> None:
    """Commands that talk to a server, through the SDK (entrepot.commands, docs/cli.md)."""
    from entrepot.commands import register

    register(app)


_client_commands()


def main() -> None:
    """Run the command; a mistake an operator can fix ends in one line, not a traceback."""
    try:
        app()
    except Exception as exc:
        explained = explain(exc, _store.get(), _store_setting.get())
        if explained is None:
            raise
        message, status = explained
        typer.echo(f"entrepot: {message}", err=True)
        raise SystemExit(status) from None
