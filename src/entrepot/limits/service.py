"""Plans (platform admins manage them, anyone authenticated may read them) and usage reports."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from entrepot.auditing.log import record
from entrepot.limits import repository as repo
from entrepot.limits.models import Granularity, PlanCreate, PlanPatch
from entrepot.limits.plans import DEFAULT_PLAN, PLANS_TOPIC
from entrepot.pagination import decode_cursor, fingerprint, page
from entrepot.principal import ANONYMOUS_PLAN, Principal, require_platform_admin
from entrepot.problems import BadRequest, Conflict, NotFound, refuse_nulls
from entrepot.store.work import Reads, UnitOfWork

MAX_SPAN = {"hour": timedelta(days=31), "day": timedelta(days=400)}
DEFAULT_SPAN = {"hour": timedelta(days=1), "day": timedelta(days=30)}


def plan_out(plan: repo.PlanRow) -> dict[str, Any]:
    return plan.as_dict()


class PlanService:
    def __init__(self, on_change: Callable[[], None]) -> None:
        # This replica's plan cache, dropped after a commit; others hear the NOTIFY.
        self.on_change = on_change

    async def create(
        self, work: UnitOfWork, principal: Principal, body: PlanCreate
    ) -> dict[str, Any]:
        require_platform_admin(principal)
        conn = work.conn
        row = await repo.insert_plan(conn, body.model_dump())
        if row is None:
            raise Conflict(f"A plan named {body.name!r} already exists.")
        await record(
            conn, principal, "plan.created", f"plan:{body.name}", details=body.model_dump()
        )
        work.announce(PLANS_TOPIC)
        work.after_commit(self.on_change)
        return plan_out(row)

    async def list_plans(self, reads: Reads, cursor: str | None, limit: int) -> dict[str, Any]:
        fp = fingerprint("plans")
        after = str(decode_cursor(cursor, fp)[0]) if cursor else None
        rows = await repo.list_plans(reads.conn, after, limit + 1)
        return page([plan_out(r) for r in rows], limit, fp, lambda p: [p["name"]])

    async def get(self, reads: Reads, name: str) -> dict[str, Any]:
        row = await repo.get_plan(reads.conn, name)
        if row is None:
            raise NotFound(f"Plan {name!r} does not exist.")
        return plan_out(row)

    async def update(
        self, work: UnitOfWork, principal: Principal, name: str, patch: PlanPatch
    ) -> dict[str, Any]:
        require_platform_admin(principal)
        changes = patch.model_dump(exclude_unset=True)
        refuse_nulls(changes, ("rate_per_second", "burst"))
        conn = work.conn
        row = await repo.get_plan(conn, name, lock=True)
        if row is None:
            raise NotFound(f"Plan {name!r} does not exist.")
        if changes:
            row = await repo.update_plan(conn, name, changes)
            await record(conn, principal, "plan.updated", f"plan:{name}", details=changes)
            work.announce(PLANS_TOPIC)
        work.after_commit(self.on_change)
        assert row is not None
        return plan_out(row)

    async def delete(self, work: UnitOfWork, principal: Principal, name: str) -> None:
        require_platform_admin(principal)
        if name == DEFAULT_PLAN:
            raise Conflict("The default plan cannot be deleted: new applications get it.")
        if name == ANONYMOUS_PLAN:
            raise Conflict(
                "The anonymous plan cannot be deleted: it limits callers without a "
                "credential (open data). Change its limits instead."
            )
        conn = work.conn
        if await repo.get_plan(conn, name, lock=True) is None:
            raise NotFound(f"Plan {name!r} does not exist.")
        in_use = await repo.apps_on_plan(conn, name)
        if in_use:
            raise Conflict(
                f"{in_use} application(s) are on plan {name!r}; move them to another first."
            )
        await repo.delete_plan(conn, name)
        await record(conn, principal, "plan.deleted", f"plan:{name}")
        work.announce(PLANS_TOPIC)
        work.after_commit(self.on_change)


def usage_window(
    granularity: Granularity, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    """The [start, end) asked for, defaulted, bounded so one call cannot read years of rows,
    and widened to whole hours or UTC days (the report says which window it covers)."""
    end = _utc(end) if end is not None else datetime.now(UTC)
    try:
        start = _utc(start) if start is not None else end - DEFAULT_SPAN[granularity]
    except OverflowError:
        raise BadRequest(
            "to is too early.", errors=[{"path": "query:to", "message": "out of range"}]
        ) from None
    if start >= end:
        raise BadRequest(
            "from must be before to.", errors=[{"path": "query:from", "message": "after to"}]
        )
    if end - start > MAX_SPAN[granularity]:
        raise BadRequest(
            f"At {granularity} granularity one call covers at most "
            f"{MAX_SPAN[granularity].days} days.",
            errors=[{"path": "query:from", "message": "span too long"}],
        )
    return _floor(start, granularity), _ceil(end, granularity)


def _floor(moment: datetime, granularity: Granularity) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if granularity == "day" else moment


def _ceil(moment: datetime, granularity: Granularity) -> datetime:
    floor = _floor(moment, granularity)
    if floor == moment:
        return moment
    step = timedelta(days=1) if granularity == "day" else timedelta(hours=1)
    try:
        return floor + step
    except OverflowError:
        return floor


async def usage_report(
    reads: Reads,
    app_id: uuid.UUID,
    granularity: Granularity,
    start: datetime,
    end: datetime,
    dataset: str | None = None,
) -> dict[str, Any]:
    rows = await repo.usage(reads.conn, app_id, start, end, granularity, dataset)
    data = [asdict(r) for r in rows]
    return {
        "app": str(app_id),
        "dataset": dataset,
        "granularity": granularity,
        "start": start,
        "end": end,
        "total": sum(r.count for r in rows),
        "data": data,
    }


async def dataset_usage_report(
    reads: Reads,
    dataset: str,
    granularity: Granularity,
    start: datetime,
    end: datetime,
    apps: list[uuid.UUID] | None = None,
) -> dict[str, Any]:
    """Every app's requests to a dataset (its provider's view: the caller is checked
    by the catalog, which knows who provides it), or only those of ``apps`` (a
    consumer's own, which the caller has checked are theirs)."""
    rows = await repo.dataset_usage(reads.conn, dataset, start, end, granularity, apps)
    return {
        "dataset": dataset,
        "granularity": granularity,
        "start": start,
        "end": end,
        "total": sum(r.count for r in rows),
        "data": [asdict(r) | {"app": str(r.app)} for r in rows],
    }


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
