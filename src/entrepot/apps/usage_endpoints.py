"""HTTP route for an app's usage report: request counts by period, endpoint class, status.

Its own router, included after the plan routes, where the report is documented.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request

from entrepot.apps.service import AppService
from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.http import StrictJsonRoute
from entrepot.limits.meter import UsageMeter
from entrepot.limits.models import Granularity, Usage
from entrepot.limits.service import usage_report, usage_window
from entrepot.parts import components
from entrepot.store.work import reads

router = APIRouter(tags=["plans and usage"], route_class=StrictJsonRoute)


@router.get(
    "/v1/apps/{app}/usage",
    response_model=Usage,
    summary="Request counts by period, endpoint class, status and dataset",
)
async def app_usage(
    app: str,
    request: Request,
    principal: CurrentPrincipal,
    granularity: Granularity = "hour",
    start: Annotated[
        datetime | None,
        Query(alias="from", description="Inclusive (RFC 3339); default: a span ago."),
    ] = None,
    end: Annotated[
        datetime | None, Query(alias="to", description="Exclusive (RFC 3339); default: now.")
    ] = None,
    dataset: Annotated[
        str | None,
        Query(max_length=64, description="Only the requests to this dataset."),
    ] = None,
) -> Any:
    # Two short reads with the meter's flush between them: the flush takes a pooled
    # connection of its own, so this request holds none while it runs (one at a time).
    apps: AppService = components(request).get(AppService)
    pool = components(request).get(asyncpg.Pool)
    async with reads(pool) as reading:  # released before the flush
        seen = await apps.get(reading, principal, app)  # visible to its org's admins and the app
    window = usage_window(granularity, start, end)
    meter: UsageMeter = components(request).get(UsageMeter)
    await meter.flush()  # this replica's latest counts are in the report
    async with reads(pool) as reading:
        return await usage_report(
            reading, uuid.UUID(seen["id"]), granularity, *window, dataset or None
        )
