"""HTTP routes for webhooks and their delivery log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.http import StrictJsonRoute
from entrepot.pagination import parse_limit
from entrepot.parts import part
from entrepot.webhooks.models import (
    Delivery,
    DeliveryPage,
    Replay,
    Replayed,
    RotateSecret,
    SecretRotated,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookPage,
    WebhookPatch,
)
from entrepot.webhooks.service import WebhookService
from entrepot.work_deps import Reading, Work

router = APIRouter(tags=["webhooks"], route_class=StrictJsonRoute)

Limit = Annotated[str | None, Query(description="Page size, 1 to 1000 (default 50).")]
Cursor = Annotated[str | None, Query(max_length=4096)]
Status = Literal["pending", "delivering", "delivered", "failed", "cancelled"]


Webhooks = Annotated[WebhookService, Depends(part(WebhookService))]


@router.post(
    "/v1/apps/{app}/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Subscribe a URL to record events of datasets the app can read",
)
async def create_webhook(
    app: str, body: WebhookCreate, principal: CurrentPrincipal, webhooks: Webhooks, work: Work
) -> Any:
    return await webhooks.create(work, principal, app, body)


@router.get("/v1/apps/{app}/webhooks", response_model=WebhookPage, summary="An app's webhooks")
async def list_webhooks(
    app: str,
    principal: CurrentPrincipal,
    webhooks: Webhooks,
    reading: Reading,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await webhooks.list_webhooks(
        reading, principal, app, cursor=cursor, limit=parse_limit(limit)
    )


@router.get("/v1/webhooks/{webhook}", response_model=Webhook)
async def get_webhook(
    webhook: str, principal: CurrentPrincipal, webhooks: Webhooks, reading: Reading
) -> Any:
    return await webhooks.get(reading, principal, webhook)


@router.patch(
    "/v1/webhooks/{webhook}",
    response_model=Webhook,
    summary="Change the URL, datasets or events; disable or re-enable",
)
async def update_webhook(
    webhook: str, body: WebhookPatch, principal: CurrentPrincipal, webhooks: Webhooks, work: Work
) -> Any:
    return await webhooks.update(work, principal, webhook, body)


@router.delete("/v1/webhooks/{webhook}", status_code=204)
async def delete_webhook(
    webhook: str, principal: CurrentPrincipal, webhooks: Webhooks, work: Work
) -> Response:
    await webhooks.delete(work, principal, webhook)
    return Response(status_code=204)


@router.get(
    "/v1/webhooks/{webhook}/deliveries",
    response_model=DeliveryPage,
    summary="The delivery log, newest first (failed = dead-lettered; retry revives)",
)
async def list_deliveries(
    webhook: str,
    principal: CurrentPrincipal,
    webhooks: Webhooks,
    reading: Reading,
    status: Status | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await webhooks.deliveries(
        reading, principal, webhook, status=status, cursor=cursor, limit=parse_limit(limit)
    )


@router.post(
    "/v1/webhooks/{webhook}/deliveries/{delivery}/retry",
    response_model=Delivery,
    summary="Queue a failed, delivered or cancelled delivery again, due now",
)
async def retry_delivery(
    webhook: str, delivery: str, principal: CurrentPrincipal, webhooks: Webhooks, work: Work
) -> Any:
    return await webhooks.retry(work, principal, webhook, delivery)


@router.post(
    "/v1/webhooks/{webhook}/replay",
    response_model=Replayed,
    summary="Deliver again the events of a dataset from a seq (while still in the feed)",
)
async def replay(
    webhook: str, body: Replay, principal: CurrentPrincipal, webhooks: Webhooks, work: Work
) -> Any:
    return await webhooks.replay(work, principal, webhook, body)


@router.post(
    "/v1/webhooks/{webhook}/rotate-secret",
    response_model=SecretRotated,
    summary="New signing secret; the old one keeps signing too during the overlap",
)
async def rotate_secret(
    webhook: str,
    principal: CurrentPrincipal,
    webhooks: Webhooks,
    work: Work,
    body: RotateSecret | None = None,
) -> Any:
    return await webhooks.rotate_secret(work, principal, webhook, body or RotateSecret())
