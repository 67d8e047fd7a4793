"""Problems as exceptions, and the OAuth token cache (pure, no server)."""

from __future__ import annotations

import httpx
import pytest

from entrepot.client import (
    ClientCredentials,
    Conflict,
    Gone,
    NotFound,
    PreconditionFailed,
    ProblemError,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationError,
)
from entrepot.client.auth import TokenCache
from entrepot.client.errors import problem_from_response


def answer(status: int, body: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=body, headers=headers)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, Unauthorized),
        (404, NotFound),
        (409, Conflict),
        (410, Gone),
        (412, PreconditionFailed),
        (422, ValidationError),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
        (418, ProblemError),
    ],
)
def test_each_status_family_has_its_exception(status: int, kind: type[ProblemError]) -> None:
    error = problem_from_response(answer(status, b'{"title": "T"}'))
    assert type(error) is kind
    assert error.status == status


def test_the_problem_document_is_carried_whole() -> None:
    body = (
        b'{"type": "https://entrepot.dev/problems/gone", "title": "Gone", "status": 410,'
        b' "detail": "Compacted.", "reason": "compacted", "request_id": "r1",'
        b' "errors": [{"path": "/a", "message": "m"}]}'
    )
    error = problem_from_response(answer(410, body, **{"Retry-After": "3"}))
    assert isinstance(error, Gone)
    assert (error.type, error.title, error.detail) == (
        "https://entrepot.dev/problems/gone",
        "Gone",
        "Compacted.",
    )
    assert error.errors == [{"path": "/a", "message": "m"}]
    assert (error.request_id, error.reason, error.retry_after) == ("r1", "compacted", 3)
    assert error.problem["reason"] == "compacted"
    assert str(error) == "410 Gone: Compacted."


def test_an_oauth_error_reads_as_a_problem() -> None:
    body = b'{"error": "invalid_client", "error_description": "Unknown client."}'
    error = problem_from_response(answer(401, body))
    assert (error.title, error.detail) == ("invalid_client", "Unknown client.")


def test_a_body_that_is_not_json_still_gives_a_problem() -> None:
    error = problem_from_response(answer(502, b"<html>Bad gateway</html>", **{"X-Request-ID": "r"}))
    assert isinstance(error, ServerError)
    assert error.title == "Bad Gateway"
    assert "Bad gateway" in error.detail
    assert error.request_id == "r"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_kept_until_its_refresh_margin() -> None:
    clock = Clock()
    cache = TokenCache(ClientCredentials("id", "secret", refresh_margin=60), clock)
    assert cache.valid() is None
    cache.store({"access_token": "t1", "expires_in": 3600}, asked_at=0)
    clock.now = 3539
    assert cache.valid() == "t1"
    clock.now = 3540
    assert cache.valid() is None, "refreshed a minute before it expires"


def test_a_short_lived_token_is_refreshed_after_ninety_percent_of_its_life() -> None:
    clock = Clock()
    cache = TokenCache(ClientCredentials("id", "secret", refresh_margin=60), clock)
    cache.store({"access_token": "t1", "expires_in": 100}, asked_at=0)
    clock.now = 89
    assert cache.valid() == "t1"
    clock.now = 90
    assert cache.valid() is None


def test_a_refused_token_is_forgotten_unless_already_replaced() -> None:
    cache = TokenCache(ClientCredentials("id", "secret"), Clock())
    cache.store({"access_token": "t1", "expires_in": 3600}, asked_at=0)
    cache.refused("t0")  # an older token: the current one stays
    assert cache.valid() == "t1"
    cache.refused("t1")
    assert cache.valid() is None


def test_the_token_request_form() -> None:
    assert ClientCredentials("id", "s").form() == {"grant_type": "client_credentials"}
    assert ClientCredentials("id", "s", scope=["a", "b"]).form()["scope"] == "a b"
    with pytest.raises(ValueError, match="access_token"):
        TokenCache(ClientCredentials("id", "s")).store({"expires_in": 1}, asked_at=0)
