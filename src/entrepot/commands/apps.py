"""``entrepot apps`` and ``entrepot keys``: applications and their API keys."""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Any

import typer

from entrepot.commands.errors import UsageProblem
from entrepot.commands.inputs import moment
from entrepot.commands.options import Limit, Scope, Scopes, page_size, scope_values
from entrepot.commands.session import Session, api_command

apps = typer.Typer(
    rich_markup_mode=None, help="Applications: create (shows the OAuth client secret once), manage."
)
keys = typer.Typer(
    rich_markup_mode=None,
    help="API keys of an application: create (shows the key once), rotate, revoke.",
)

App = Annotated[str, typer.Argument(metavar="APP", help="Application id.", show_default=False)]
RedirectUris = Annotated[
    list[str] | None, typer.Option("--redirect-uri", help="Repeat for several.")
]


@api_command(apps, "create")
def create_app(
    session: Session,
    org: Annotated[str, typer.Argument(metavar="ORG", help="The organisation that owns it.")],
    name: Annotated[str, typer.Argument(metavar="NAME", help="Application name.")],
    description: Annotated[str | None, typer.Option("--description")] = None,
    redirect_uri: RedirectUris = None,
    scope: Scopes = None,
) -> None:
    """Register an application; its client_secret is shown only in this answer."""
    created = session.api.apps.create(
        org,
        name,
        description=description,
        redirect_uris=redirect_uri,
        scopes=scope_values(scope),
    )
    session.printer.one(created)


@api_command(apps, "get")
def get_app(session: Session, app: App) -> None:
    """Show one application."""
    session.printer.one(session.api.apps.get(app))


@api_command(apps, "list")
def list_apps(
    session: Session,
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's.")] = None,
    limit: Limit = None,
) -> None:
    """List the applications you may see."""
    found = session.api.apps.list(org=org, limit=page_size(limit))
    session.printer.many(islice(found, limit), ["id", "org", "name", "plan", "scopes", "disabled"])


@api_command(apps, "patch")
def patch_app(
    session: Session,
    app: App,
    description: Annotated[str | None, typer.Option("--description")] = None,
    redirect_uri: Annotated[
        list[str] | None, typer.Option("--redirect-uri", help="All of them; repeat.")
    ] = None,
    scope: Annotated[
        list[Scope] | None, typer.Option("--scope", help="All the app's scopes; repeat.")
    ] = None,
    plan: Annotated[str | None, typer.Option("--plan", help="A plan's name.")] = None,
    disabled: Annotated[bool | None, typer.Option("--disabled/--enabled")] = None,
) -> None:
    """Change an application: only the options given are sent."""
    changes: dict[str, Any] = {
        key: value
        for key, value in {
            "description": description,
            "redirect_uris": redirect_uri,
            "scopes": scope_values(scope),
            "plan": plan,
            "disabled": disabled,
        }.items()
        if value is not None
    }
    if not changes:
        raise UsageProblem("nothing to change: give at least one option (see --help)")
    session.printer.one(session.api.apps.update(app, **changes))


@api_command(apps, "delete", output=False)
def delete_app(session: Session, app: App) -> None:
    """Delete an application (its keys, tokens, grants and webhooks stop)."""
    session.api.apps.delete(app)
    session.printer.done(f"Deleted application {app}")


@api_command(apps, "rotate-secret")
def rotate_secret(session: Session, app: App) -> None:
    """A new OAuth client secret, shown only now; the old one stops at once."""
    session.printer.one(session.api.apps.rotate_secret(app))


KeyId = Annotated[str, typer.Argument(metavar="KEY_ID", help="Key id.", show_default=False)]


@api_command(keys, "create")
def create_key(
    session: Session,
    app: App,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name for people.")],
    scope: Scopes = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="RFC 3339 time [default: never].")
    ] = None,
) -> None:
    """Issue an API key; the key itself is shown only in this answer."""
    created = session.api.keys.create(
        app, name, scopes=scope_values(scope), expires_at=moment(expires_at, "--expires-at")
    )
    session.printer.one(created)


@api_command(keys, "list")
def list_keys(session: Session, app: App, limit: Limit = None) -> None:
    """List an application's keys (prefixes and last use, never the secrets)."""
    found = session.api.keys.list(app, limit=page_size(limit))
    session.printer.many(
        islice(found, limit), ["id", "name", "prefix", "scopes", "last_used_at", "revoked_at"]
    )


@api_command(keys, "rotate")
def rotate_key(
    session: Session,
    app: App,
    key_id: KeyId,
    overlap: Annotated[
        int | None,
        typer.Option("--overlap", min=0, help="Seconds the old key keeps working."),
    ] = None,
) -> None:
    """A replacement key, shown only now; the old one works --overlap seconds more."""
    session.printer.one(session.api.keys.rotate(app, key_id, overlap_seconds=overlap))


@api_command(keys, "revoke", output=False)
def revoke_key(session: Session, app: App, key_id: KeyId) -> None:
    """Revoke a key, at once on every replica."""
    session.api.keys.revoke(app, key_id)
    session.printer.done(f"Revoked key {key_id}")
