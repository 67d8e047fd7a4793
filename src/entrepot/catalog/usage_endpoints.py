"""HTTP route for a dataset's usage report: every app's requests to it, for its provider.

Its own router, included beside the app's report (``entrepot.apps.usage_endpoints``),
whose two-reads-and-a-flush shape it shares.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request

from entrepot.access.resolver import AccessResolver
from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.catalog import service
from entrepot.http import StrictJsonRoute
from entrepot.limits.meter import UsageMeter
from entrepot.limits.models import DatasetUsage, Granularity
from entrepot.limits.service import dataset_usage_report, usage_window
from entrepot.parts import components
from entrepot.store.work import reads

router = APIRouter(tags=["plans and usage"], route_class=StrictJsonRoute)


@router.get(
    "/v1/datasets/{ds}/usage",
    response_model=DatasetUsage,
    summary="Every app's requests to a dataset, by period, app, endpoint class and status",
)
async def dataset_usage(
    ds: str,
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
) -> Any:
    # As the app's report: no connection held while this replica's counts are flushed.
    access: AccessResolver = components(request).get(AccessResolver)
    pool = components(request).get(asyncpg.Pool)
    async with reads(pool) as reading:
        await service.require_provider(reading, access, principal, ds)
    window = usage_window(granularity, start, end)
    meter: UsageMeter = components(request).get(UsageMeter)
    await meter.flush()
    async with reads(pool) as reading:
        return await dataset_usage_report(reading, ds, granularity, *window)
