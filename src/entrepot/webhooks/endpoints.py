"""HTTP routes for webhooks and their delivery log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from entrepot.auth.authenticate import CurrentPrincipal
from entrepot.pagination import parse_limit
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

router = APIRouter(tags=["webhooks"])

Limit = Annotated[str | None, Query(description="Page size, 1 to 1000 (default 50).")]
Cursor = Annotated[str | None, Query(max_length=4096)]
Status = Literal["pending", "delivering", "delivered", "failed", "cancelled"]


def _service(request: Request) -> WebhookService:
    service: WebhookService = request.app.state.webhooks_runtime.service
    return service


@router.post(
    "/v1/apps/{app}/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Subscribe a URL to record events of datasets the app can read",
)
async def create_webhook(
    app: str, body: WebhookCreate, request: Request, principal: CurrentPrincipal, work: Work
) -> Any:
    return await _service(request).create(work, principal, app, body)


@router.get("/v1/apps/{app}/webhooks", response_model=WebhookPage, summary="An app's webhooks")
async def list_webhooks(
    app: str,
    request: Request,
    principal: CurrentPrincipal,
    reading: Reading,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await _service(request).list_webhooks(
        reading, principal, app, cursor=cursor, limit=parse_limit(limit)
    )


@router.get("/v1/webhooks/{webhook}", response_model=Webhook)
async def get_webhook(
    webhook: str, request: Request, principal: CurrentPrincipal, reading: Reading
) -> Any:
    return await _service(request).get(reading, principal, webhook)


@router.patch(
    "/v1/webhooks/{webhook}",
    response_model=Webhook,
    summary="Change the URL, datasets or events; disable or re-enable",
)
async def update_webhook(
    webhook: str, body: WebhookPatch, request: Request, principal: CurrentPrincipal, work: Work
) -> Any:
    return await _service(request).update(work, principal, webhook, body)


@router.delete("/v1/webhooks/{webhook}", status_code=204)
async def delete_webhook(
    webhook: str, request: Request, principal: CurrentPrincipal, work: Work
) -> Response:
    await _service(request).delete(work, principal, webhook)
    return Response(status_code=204)


@router.get(
    "/v1/webhooks/{webhook}/deliveries",
    response_model=DeliveryPage,
    summary="The delivery log, newest first (failed = dead-lettered; retry revives)",
)
async def list_deliveries(
    webhook: str,
    request: Request,
    principal: CurrentPrincipal,
    reading: Reading,
    status: Status | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await _service(request).deliveries(
        reading, principal, webhook, status=status, cursor=cursor, limit=parse_limit(limit)
    )


@router.post(
    "/v1/webhooks/{webhook}/deliveries/{delivery}/retry",
    response_model=Delivery,
    summary="Queue a failed, delivered or cancelled delivery again, due now",
)
async def retry_delivery(
    webhook: str, delivery: str, request: Request, principal: CurrentPrincipal, work: Work
) -> Any:
    return await _service(request).retry(work, principal, webhook, delivery)


@router.post(
    "/v1/webhooks/{webhook}/replay",
    response_model=Replayed,
    summary="Deliver again the events of a dataset from a seq (while still in the feed)",
)
async def replay(
    webhook: str, body: Replay, request: Request, principal: CurrentPrincipal, work: Work
) -> Any:
    return await _service(request).replay(work, principal, webhook, body)


@router.post(
    "/v1/webhooks/{webhook}/rotate-secret",
    response_model=SecretRotated,
    summary="New signing secret; the old one keeps signing too during the overlap",
)
async def rotate_secret(
    webhook: str,
    request: Request,
    principal: CurrentPrincipal,
    work: Work,
    body: RotateSecret | None = None,
) -> Any:
    return await _service(request).rotate_secret(work, principal, webhook, body or RotateSecret())
