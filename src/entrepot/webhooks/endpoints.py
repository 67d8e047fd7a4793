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
    app: str, body: WebhookCreate, request: Request, principal: CurrentPrincipal
) -> Any:
    return await _service(request).create(principal, app, body)


@router.get("/v1/apps/{app}/webhooks", response_model=WebhookPage, summary="An app's webhooks")
async def list_webhooks(
    app: str,
    request: Request,
    principal: CurrentPrincipal,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await _service(request).list_webhooks(
        principal, app, cursor=cursor, limit=parse_limit(limit)
    )


@router.get("/v1/webhooks/{webhook}", response_model=Webhook)
async def get_webhook(webhook: str, request: Request, principal: CurrentPrincipal) -> Any:
    return await _service(request).get(principal, webhook)


@router.patch(
    "/v1/webhooks/{webhook}",
    response_model=Webhook,
    summary="Change the URL, datasets or events; disable or re-enable",
)
async def update_webhook(
    webhook: str, body: WebhookPatch, request: Request, principal: CurrentPrincipal
) -> Any:
    return await _service(request).update(principal, webhook, body)


@router.delete("/v1/webhooks/{webhook}", status_code=204)
async def delete_webhook(webhook: str, request: Request, principal: CurrentPrincipal) -> Response:
    await _service(request).delete(principal, webhook)
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
    status: Status | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    return await _service(request).deliveries(
        principal, webhook, status=status, cursor=cursor, limit=parse_limit(limit)
    )


@router.post(
    "/v1/webhooks/{webhook}/deliveries/{delivery}/retry",
    response_model=Delivery,
    summary="Queue a failed, delivered or cancelled delivery again, due now",
)
async def retry_delivery(
    webhook: str, delivery: str, request: Request, principal: CurrentPrincipal
) -> Any:
    return await _service(request).retry(principal, webhook, delivery)


@router.post(
    "/v1/webhooks/{webhook}/replay",
    response_model=Replayed,
    summary="Deliver again the events of a dataset from a seq (while still in the feed)",
)
async def replay(webhook: str, body: Replay, request: Request, principal: CurrentPrincipal) -> Any:
    return await _service(request).replay(principal, webhook, body)


@router.post(
    "/v1/webhooks/{webhook}/rotate-secret",
    response_model=SecretRotated,
    summary="New signing secret; the old one keeps signing too during the overlap",
)
async def rotate_secret(
    webhook: str, request: Request, principal: CurrentPrincipal, body: RotateSecret | None = None
) -> Any:
    return await _service(request).rotate_secret(principal, webhook, body or RotateSecret())
