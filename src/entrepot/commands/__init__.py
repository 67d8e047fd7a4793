"""The client commands of ``entrepot``: every one goes through the SDK's ``Client``.

``register(app)`` adds them to the root command. The shared parts: connection.py
(``--url``/``--token``/``--profile`` and the config file), output.py
(``--output table|json|ndjson``), errors.py (the error boundary and exit
statuses), session.py (what every API command gets); one module per group.
"""

from __future__ import annotations

import typer

from entrepot.commands import (
    access,
    apps,
    audit,
    auth,
    bulk,
    changes,
    datasets,
    orgs,
    plans,
    records,
    sync,
    users,
    webhooks,
)


def register(app: typer.Typer) -> None:
    for flat in (auth.commands, bulk.commands, changes.commands, audit.commands, sync.commands):
        app.registered_commands.extend(flat.registered_commands)
    app.add_typer(orgs.app, name="orgs", no_args_is_help=True)
    app.add_typer(users.app, name="users", no_args_is_help=True)
    app.add_typer(datasets.app, name="datasets", no_args_is_help=True)
    app.add_typer(records.app, name="records", no_args_is_help=True)
    app.add_typer(apps.apps, name="apps", no_args_is_help=True)
    app.add_typer(apps.keys, name="keys", no_args_is_help=True)
    app.add_typer(access.requests, name="access-requests", no_args_is_help=True)
    app.add_typer(access.grants, name="grants", no_args_is_help=True)
    app.add_typer(webhooks.app, name="webhooks", no_args_is_help=True)
    app.add_typer(audit.audit, name="audit", no_args_is_help=True)
    app.add_typer(plans.app, name="plans", no_args_is_help=True)
