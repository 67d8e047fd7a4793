"""Credentials: API keys, and OAuth client credentials with a cached, refreshed token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from entrepot.client import (
    ApiKey,
    AppCreated,
    Client,
    ClientCredentials,
    Forbidden,
    Unauthorized,
)
from tests.sdk.conftest import FAST, unique
from tests.sdk.proxy import Proxy


@pytest.fixture
def app(admin: Client) -> AppCreated:
    org = admin.orgs.create(unique("org"), "Org")
    return admin.apps.create(org.name, unique("app"), scopes=["datasets:read", "records:read"])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def oauth(through: Proxy, app: AppCreated, clock: Clock) -> Iterator[Client]:
    credentials = ClientCredentials(app.client_id, app.client_secret)
    with Client(through.url, credentials, retry=FAST, clock=clock) as client:
        yield client


def token_requests(proxy: Proxy) -> int:
    return len(proxy.seen("POST", "/oauth/token"))


def test_a_token_is_fetched_once_and_reused(oauth: Client, through: Proxy, dataset: str) -> None:
    for _ in range(3):
        assert oauth.datasets.get(dataset).name == dataset
    assert token_requests(through) == 1
    bearers = {r.headers["authorization"] for r in through.seen("GET", "/v1/datasets/")}
    assert len(bearers) == 1
    assert oauth.transport.tokens is not None
    assert oauth.transport.tokens.token is not None
    assert oauth.transport.tokens.token.scope == "datasets:read records:read"


def test_a_token_is_refreshed_before_it_expires(
    oauth: Client, through: Proxy, clock: Clock, dataset: str
) -> None:
    oauth.datasets.get(dataset)  # the server's tokens live 60 s (ENTREPOT_ACCESS_TOKEN_TTL_SECONDS)
    clock.now += 50
    oauth.datasets.get(dataset)
    assert token_requests(through) == 1, "50 s in: still fresh"
    clock.now += 5  # 55 s: within the refresh margin (10% of 60 s)
    oauth.datasets.get(dataset)
    assert token_requests(through) == 2
    bearers = [r.headers["authorization"] for r in through.seen("GET", "/v1/datasets/")]
    assert bearers[0] == bearers[1] != bearers[2]


def test_a_401_fetches_a_new_token_once_and_retries(
    oauth: Client, through: Proxy, dataset: str
) -> None:
    oauth.datasets.get(dataset)
    through.answer(1, 401, body=b'{"title": "Unauthorized", "status": 401}')
    assert oauth.datasets.get(dataset).name == dataset
    assert token_requests(through) == 2

    through.answer(2, 401, body=b'{"title": "Unauthorized", "status": 401}')
    with pytest.raises(Unauthorized):
        oauth.datasets.get(dataset)
    assert token_requests(through) == 3, "refreshed once, not in a loop"


def test_a_wrong_client_secret_raises_unauthorized_with_the_oauth_error(
    server: str, app: AppCreated
) -> None:
    with (
        Client(server, ClientCredentials(app.client_id, "not-the-secret")) as client,
        pytest.raises(Unauthorized) as refused,
    ):
        client.orgs.list().collect()
    assert refused.value.title == "invalid_client"


def test_a_narrower_scope_can_be_asked_for(server: str, app: AppCreated, dataset: str) -> None:
    credentials = ClientCredentials(app.client_id, app.client_secret, scope=["datasets:read"])
    with Client(server, credentials) as client:
        assert client.datasets.get(dataset).name == dataset
        with pytest.raises(Forbidden):
            client.records.list(dataset).collect()


def test_an_api_key_is_a_bearer_and_its_scopes_apply(
    server: str, admin: Client, app: AppCreated, dataset: str
) -> None:
    issued = admin.keys.create(app.id, "reader", scopes=["datasets:read"])
    assert issued.key.startswith(issued.prefix)
    with Client(server, ApiKey(issued.key)) as client:
        assert client.datasets.get(dataset).name == dataset
        with pytest.raises(Forbidden) as denied:
            client.records.list(dataset).collect()
        assert denied.value.status == 403
    admin.keys.revoke(app.id, issued.id)
    with Client(server, issued.key) as client, pytest.raises(Unauthorized):
        client.datasets.get(dataset)
