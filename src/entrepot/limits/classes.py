"""Endpoint classes: the coarse families usage is reported by."""

from __future__ import annotations

CLASSES = (
    "records.read",
    "records.write",
    "bulk.import",
    "bulk.export",
    "changes",
    "datasets",
    "webhooks",
    "access",
    "management",
    "other",
)


def endpoint_class(method: str, route: str) -> str:
    """Classify a request by its route template (never by the raw path, which is unbounded)."""
    if route.startswith("/v1/datasets/{ds}/records"):
        return "records.read" if method in ("GET", "HEAD") else "records.write"
    if route == "/v1/datasets/{ds}/import":
        return "bulk.import"
    if route == "/v1/datasets/{ds}/export":
        return "bulk.export"
    if route == "/v1/datasets/{ds}/changes":
        return "changes"
    if route.startswith("/v1/datasets/{ds}/access-requests") or route.startswith(
        ("/v1/access-requests", "/v1/grants")
    ):
        return "access"
    if route.startswith("/v1/datasets"):
        return "datasets"
    if route.startswith(("/v1/webhooks", "/v1/apps/{app}/webhooks")):
        return "webhooks"
    if route.startswith(
        (
            "/v1/apps",
            "/v1/orgs",
            "/v1/plans",
            "/v1/users",
            "/v1/auth",
            "/v1/audit",
            "/v1/admin",
            "/v1/me",
        )
    ):
        return "management"
    return "other"
