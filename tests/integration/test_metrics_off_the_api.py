"""Prometheus metrics are not served to API clients on the API port.

They are on a listener of their own (ENTREPOT_METRICS_PORT, see
tests/e2e/test_metrics_listener.py); the API port answers /metrics as any
unknown path, whoever asks.
"""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY


async def test_the_api_port_answers_404_for_metrics(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    for caller in (anon, client):  # anonymous, then the platform admin
        response = await caller.get("/metrics")
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "entrepot_http_requests_total" not in response.text
    assert "/metrics" not in (await anon.get("/openapi.json")).json()["paths"]


async def test_requests_are_still_counted_for_the_listener(anon: httpx.AsyncClient) -> None:
    labels = {"method": "GET", "route": "/healthz", "status": "200", "app": "anonymous"}
    before = REGISTRY.get_sample_value("entrepot_http_requests_total", labels) or 0.0
    assert (await anon.get("/healthz")).status_code == 200
    assert REGISTRY.get_sample_value("entrepot_http_requests_total", labels) == before + 1
