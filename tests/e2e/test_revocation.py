"""Revocation across replicas: two `entrepot serve` processes on one PostgreSQL.

A credential revoked through replica A must be refused by replica B, whose
cache has just seen it work, within one second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_serve import serving

pytestmark = pytest.mark.slow

ADMIN = "e2e-revocation-admin-token-0123456789"
BOUND_SECONDS = 1.0


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, fresh_database: object
) -> Iterator[tuple[str, str]]:
    url = asyncio.run(fresh_database())  # type: ignore[operator]
    env = {
        "ENTREPOT_DATABASE_URL": url,
        "ENTREPOT_BOOTSTRAP_TOKEN": ADMIN,
        "ENTREPOT_LOG_FORMAT": "console",
    }
    logs = tmp_path_factory.mktemp("replicas")
    with ExitStack() as stack:
        a = stack.enter_context(serving(env, log=Path(logs / "a.log")))
        b = stack.enter_context(serving(env, log=Path(logs / "b.log")))
        yield a, b


def admin(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)


def datasets_status(base: str, credential: str) -> int:
    headers = {"Authorization": f"Bearer {credential}"}
    return httpx.get(f"{base}/v1/datasets", headers=headers, timeout=5).status_code


def seconds_until_refused(base: str, credential: str, since: float) -> float:
    """Poll replica ``base`` until it refuses; fail once the bound has passed."""
    while True:
        status = datasets_status(base, credential)
        elapsed = time.monotonic() - since
        if status == 401:
            return elapsed
        assert status == 200, status
        assert elapsed < BOUND_SECONDS, f"still accepted {elapsed:.3f} s after revocation"
        time.sleep(0.005)


def new_app(a: httpx.Client) -> dict[str, str]:
    org = a.post("/v1/orgs", json={"name": f"org-{time.monotonic_ns()}", "title": "Org"})
    assert org.status_code == 201, org.text
    app = a.post("/v1/apps", json={"org": org.json()["name"], "name": "consumer"})
    assert app.status_code == 201, app.text
    created: dict[str, str] = app.json()
    return created


def test_a_key_revoked_on_one_replica_is_refused_by_the_other_within_a_second(
    replicas: tuple[str, str],
) -> None:
    base_a, base_b = replicas
    with admin(base_a) as a:
        app = new_app(a)
        key = a.post(f"/v1/apps/{app['id']}/keys", json={"name": "shared"})
        assert key.status_code == 201, key.text
        secret, key_id = key.json()["key"], key.json()["id"]
        for _ in range(3):  # B has now seen (and cached) the key as valid
            assert datasets_status(base_b, secret) == 200

        started = time.monotonic()
        assert a.delete(f"/v1/apps/{app['id']}/keys/{key_id}").status_code == 204
        elapsed = seconds_until_refused(base_b, secret, started)
    print(f"\nkey revoked on A, refused by B after {elapsed * 1000:.1f} ms")
    assert elapsed < BOUND_SECONDS


def test_an_app_disabled_on_one_replica_has_its_tokens_refused_by_the_other_within_a_second(
    replicas: tuple[str, str],
) -> None:
    base_a, base_b = replicas
    with admin(base_a) as a:
        app = new_app(a)
        issued = httpx.post(
            f"{base_a}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(app["client_id"], app["client_secret"]),
        )
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        for _ in range(3):  # B verifies the token (A's signing key, from the shared store)
            assert datasets_status(base_b, token) == 200

        started = time.monotonic()
        disabled = a.patch(f"/v1/apps/{app['id']}", json={"disabled": True})
        assert disabled.status_code == 200, disabled.text
        elapsed = seconds_until_refused(base_b, token, started)
    print(f"\napp disabled on A, its token refused by B after {elapsed * 1000:.1f} ms")
    assert elapsed < BOUND_SECONDS
    again = httpx.post(
        f"{base_b}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"
