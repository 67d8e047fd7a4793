"""``entrepot plans``: rate limits and quotas that apps are put on (platform admins)."""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Any

import typer

from entrepot.commands.errors import UsageProblem
from entrepot.commands.options import Limit, page_size
from entrepot.commands.session import Session, api_command

app = typer.Typer(
    rich_markup_mode=None,
    help="Plans (platform admins): rate and quotas; put an app on one with apps patch --plan.",
)

Plan = Annotated[str, typer.Argument(metavar="PLAN", help="Plan name.", show_default=False)]
Rate = Annotated[float, typer.Option("--rate", help="Requests per second, sustained.")]
Burst = Annotated[int, typer.Option("--burst", min=1, help="Requests allowed at once.")]
Daily = Annotated[int | None, typer.Option("--daily-quota", min=0, help="Requests a UTC day.")]
Monthly = Annotated[
    int | None, typer.Option("--monthly-quota", min=0, help="Requests a UTC month.")
]
COLUMNS = ["name", "rate_per_second", "burst", "daily_quota", "monthly_quota"]


@api_command(app, "create")
def create(
    session: Session,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Plan name.")],
    rate: Rate,
    burst: Burst,
    daily_quota: Daily = None,
    monthly_quota: Monthly = None,
) -> None:
    """Create a plan."""
    created = session.api.plans.create(
        name,
        rate_per_second=rate,
        burst=burst,
        daily_quota=daily_quota,
        monthly_quota=monthly_quota,
    )
    session.printer.one(created)


@api_command(app, "get")
def get(session: Session, plan: Plan) -> None:
    """Show one plan."""
    session.printer.one(session.api.plans.get(plan))


@api_command(app, "list")
def list_(session: Session, limit: Limit = None) -> None:
    """List the plans."""
    session.printer.many(islice(session.api.plans.list(limit=page_size(limit)), limit), COLUMNS)


@api_command(app, "patch")
def patch(
    session: Session,
    plan: Plan,
    rate: Annotated[float | None, typer.Option("--rate", help="Requests per second.")] = None,
    burst: Annotated[int | None, typer.Option("--burst", min=1)] = None,
    daily_quota: Daily = None,
    monthly_quota: Monthly = None,
    no_daily_quota: Annotated[
        bool, typer.Option("--no-daily-quota", help="Remove the daily quota.")
    ] = False,
    no_monthly_quota: Annotated[
        bool, typer.Option("--no-monthly-quota", help="Remove the monthly quota.")
    ] = False,
) -> None:
    """Change a plan: only the options given are sent; it applies to its apps at once."""
    changes: dict[str, Any] = {
        key: value
        for key, value in {
            "rate_per_second": rate,
            "burst": burst,
            "daily_quota": daily_quota,
            "monthly_quota": monthly_quota,
        }.items()
        if value is not None
    }
    for flag, key, given in (
        (no_daily_quota, "daily_quota", daily_quota),
        (no_monthly_quota, "monthly_quota", monthly_quota),
    ):
        if flag and given is not None:
            raise UsageProblem(f"--{key.replace('_', '-')} and --no-{key.replace('_', '-')} clash")
        if flag:
            changes[key] = None
    if not changes:
        raise UsageProblem("nothing to change: give at least one option (see --help)")
    session.printer.one(session.api.plans.update(plan, **changes))


@api_command(app, "delete", output=False)
def delete(session: Session, plan: Plan) -> None:
    """Delete a plan no app is on."""
    session.api.plans.delete(plan)
    session.printer.done(f"Deleted plan {plan}")
