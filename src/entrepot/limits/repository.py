"""SQL for plans and usage counters. Plans come back as :class:`PlanRow`."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import asyncpg

from entrepot.store.types import Conn, Executor

PLAN_COLUMNS = "name, rate_per_second, burst, daily_quota, monthly_quota, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class PlanRow:
    name: str
    rate_per_second: float
    burst: int
    daily_quota: int | None
    monthly_quota: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> PlanRow:
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[6])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _plan(row: asyncpg.Record | None) -> PlanRow | None:
    return None if row is None else PlanRow.of(row)


async def all_plans(conn: Executor) -> list[PlanRow]:
    return [
        PlanRow.of(r) for r in await conn.fetch(f"SELECT {PLAN_COLUMNS} FROM plans ORDER BY name")
    ]


async def get_plan(conn: Executor, name: str, *, lock: bool = False) -> PlanRow | None:
    suffix = " FOR UPDATE" if lock else ""
    return _plan(
        await conn.fetchrow(f"SELECT {PLAN_COLUMNS} FROM plans WHERE name = $1{suffix}", name)
    )


async def list_plans(conn: Executor, after: str | None, limit: int) -> list[PlanRow]:
    rows = await conn.fetch(
        f"SELECT {PLAN_COLUMNS} FROM plans WHERE $1::text IS NULL OR name > $1 "
        "ORDER BY name LIMIT $2",
        after,
        limit,
    )
    return [PlanRow.of(r) for r in rows]


async def insert_plan(conn: Conn, values: dict[str, Any]) -> PlanRow | None:
    """The new plan, or None if the name is taken."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO plans (name, rate_per_second, burst, daily_quota, monthly_quota)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING {PLAN_COLUMNS}
        """,
        values["name"],
        values["rate_per_second"],
        values["burst"],
        values.get("daily_quota"),
        values.get("monthly_quota"),
    )
    return _plan(row)


async def update_plan(conn: Conn, name: str, changes: dict[str, Any]) -> PlanRow | None:
    sets, args = [], [name]
    for column in ("rate_per_second", "burst", "daily_quota", "monthly_quota"):
        if column in changes:
            args.append(changes[column])
            sets.append(f"{column} = ${len(args)}")
    sets.append("updated_at = now()")
    return _plan(
        await conn.fetchrow(
            f"UPDATE plans SET {', '.join(sets)} WHERE name = $1 RETURNING {PLAN_COLUMNS}", *args
        )
    )


async def apps_on_plan(conn: Executor, name: str) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM apps WHERE plan = $1", name)
    return count


async def delete_plan(conn: Conn, name: str) -> None:
    await conn.execute("DELETE FROM plans WHERE name = $1", name)


async def add_usage(
    conn: Executor, rows: list[tuple[uuid.UUID, datetime, str, int, str, int]]
) -> None:
    """Add counts in one statement; rows of apps deleted meanwhile are dropped, and a
    dataset name that names no dataset counts as '' (no dataset), so what callers type
    in a path cannot grow the table.

    Rows are grouped after that mapping (one row per key, as ON CONFLICT needs) and
    written in key order, so replicas flushing at once lock them in the same order
    and cannot deadlock."""
    await conn.execute(
        """
        INSERT INTO usage_hourly (app_id, hour, endpoint_class, status, dataset, count)
        SELECT u.app_id, u.hour, u.endpoint_class, u.status,
               CASE WHEN u.dataset = '' OR EXISTS (SELECT 1 FROM datasets d
                                                   WHERE d.name = u.dataset)
                    THEN u.dataset ELSE '' END AS ds,
               sum(u.count)
        FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::smallint[], $5::text[],
                    $6::bigint[]) AS u (app_id, hour, endpoint_class, status, dataset, count)
        WHERE EXISTS (SELECT 1 FROM apps a WHERE a.id = u.app_id)
        GROUP BY 1, 2, 3, 4, 5
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (app_id, hour, endpoint_class, status, dataset)
        DO UPDATE SET count = usage_hourly.count + excluded.count
        """,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        [r[5] for r in rows],
    )


async def admitted_since(
    conn: Executor, app_ids: list[uuid.UUID], since: datetime
) -> dict[uuid.UUID, int]:
    """Requests each app had admitted (anything but a 429) since ``since``."""
    rows = await conn.fetch(
        """
        SELECT app_id, sum(count)::bigint AS n FROM usage_hourly
        WHERE app_id = ANY($1::uuid[]) AND hour >= $2 AND status <> 429
        GROUP BY app_id
        """,
        app_ids,
        since,
    )
    return {r["app_id"]: r["n"] for r in rows}


@dataclass(frozen=True, slots=True)
class UsageCount:
    """One line of an app's report: requests in a period, by class, status and dataset
    (None: routes without one)."""

    period: datetime
    endpoint_class: str
    status: int
    dataset: str | None
    count: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> UsageCount:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class DatasetUsageCount:
    """One line of a dataset's report: one app's requests to it in a period."""

    period: datetime
    app: uuid.UUID
    endpoint_class: str
    status: int
    count: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> DatasetUsageCount:
        return cls(*row)


async def usage(
    conn: Executor,
    app_id: uuid.UUID,
    start: datetime,
    end: datetime,
    granularity: str,
    dataset: str | None = None,
) -> list[UsageCount]:
    """An app's counts; only those of ``dataset`` when one is given."""
    rows = await conn.fetch(
        """
        SELECT date_trunc($4, hour, 'UTC') AS period, endpoint_class, status,
               NULLIF(dataset, '') AS dataset, sum(count)::bigint AS count
        FROM usage_hourly
        WHERE app_id = $1 AND hour >= $2 AND hour < $3
          AND ($5::text IS NULL OR dataset = $5)
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 NULLS FIRST
        """,
        app_id,
        start,
        end,
        granularity,
        dataset,
    )
    return [UsageCount.of(r) for r in rows]


async def dataset_usage(
    conn: Executor,
    dataset: str,
    start: datetime,
    end: datetime,
    granularity: str,
    apps: list[uuid.UUID] | None = None,
) -> list[DatasetUsageCount]:
    """Every app's counts of requests to ``dataset`` (only ``apps``' when given)."""
    rows = await conn.fetch(
        """
        SELECT date_trunc($4, hour, 'UTC') AS period, app_id AS app, endpoint_class, status,
               sum(count)::bigint AS count
        FROM usage_hourly
        WHERE dataset = $1 AND hour >= $2 AND hour < $3
          AND ($5::uuid[] IS NULL OR app_id = ANY($5))
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        """,
        dataset,
        start,
        end,
        granularity,
        apps,
    )
    return [DatasetUsageCount.of(r) for r in rows]


async def purge_usage(conn: Executor, before: datetime) -> int:
    result: str = await conn.execute("DELETE FROM usage_hourly WHERE hour < $1", before)
    return int(result.rsplit(" ", 1)[-1])
