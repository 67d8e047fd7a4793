"""Browsers on allowed origins may call the API (``ENTREPOT_CORS_ORIGINS``); others not.

A page's credential is a bearer token, never a cookie: no origin is allowed
credentials. Problems carry the CORS headers too, so a page can read why it was
refused; the headers a client follows (ETag, rate limits, Location, the request id)
are exposed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pydantic
import pytest

from entrepot.settings import Settings
from tests.conftest import ADMIN_TOKEN, app_and_client
from tests.factories import make_dataset

ALLOWED = "https://portal.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture(scope="module")
async def browser(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with one allowed origin, as a browser's requests reach it (no credential
    unless a test sends one)."""
    allowing = settings.model_copy(update={"cors_origins": f"{ALLOWED}, http://localhost:3000"})
    async with app_and_client(allowing) as (_, client):
        client.headers.pop("Authorization")
        yield client


def admin(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_a_preflight_from_an_allowed_origin_is_answered(
    browser: httpx.AsyncClient,
) -> None:
    answer = await browser.options(
        "/v1/datasets/x/records/y",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    allowed = {m.strip() for m in answer.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "PUT", "PATCH", "DELETE", "POST"} <= allowed
    headers = answer.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "if-match"} <= {h.strip() for h in headers.split(",")}
    assert "access-control-allow-credentials" not in answer.headers
    assert answer.headers["x-request-id"]  # through the edge like any request


async def test_a_preflight_from_another_origin_is_refused(browser: httpx.AsyncClient) -> None:
    answer = await browser.options(
        "/v1/datasets",
        headers={"Origin": OTHER, "Access-Control-Request-Method": "GET"},
    )
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers


async def test_an_answer_to_an_allowed_origin_exposes_what_a_client_follows(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    ds = (await make_dataset(client, primary_key="sku"))["name"]
    created = await browser.post(
        f"/v1/datasets/{ds}/records",
        json={"sku": "w-1", "name": "Widget", "price": 1},
        headers=admin(ALLOWED),
    )
    assert created.status_code == 201, created.text
    assert created.headers["access-control-allow-origin"] == ALLOWED
    exposed = {
        h.strip().lower() for h in created.headers["access-control-expose-headers"].split(",")
    }
    assert {"etag", "location", "x-request-id", "ratelimit-remaining", "retry-after"} <= exposed
    assert "origin" in created.headers["vary"].lower()


async def test_a_problem_to_an_allowed_origin_is_readable_by_the_page(
    browser: httpx.AsyncClient,
) -> None:
    refused = await browser.get("/v1/apps", headers={"Origin": ALLOWED})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    assert refused.json()["status"] == 401


async def test_an_answer_to_another_origin_carries_no_permission(
    browser: httpx.AsyncClient,
) -> None:
    answer = await browser.get("/v1/datasets", headers=admin(OTHER))
    assert answer.status_code == 200  # the server answers; the browser withholds it
    assert "access-control-allow-origin" not in answer.headers


async def test_without_the_setting_no_origin_is_allowed(anon: httpx.AsyncClient) -> None:
    answer = await anon.options(
        "/v1/datasets", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("bad", ["portal.example.com", "https://a.example/path", "ftp://x"])
def test_an_origin_that_is_not_one_is_refused_at_start(bad: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="is not an origin"):
        Settings(database_url="postgresql://localhost/x", cors_origins=bad)
