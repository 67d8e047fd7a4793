"""Settings refuse, at start and for every entry point, what would fail or be unsafe later."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from entrepot.settings import MIN_BOOTSTRAP_TOKEN_LENGTH, Settings


def test_a_short_bootstrap_token_is_refused_without_echoing_it() -> None:
    short = "s" * (MIN_BOOTSTRAP_TOKEN_LENGTH - 1)
    with pytest.raises(ValidationError, match="at least 32 characters") as refused:
        Settings(bootstrap_token=short)
    assert short not in str(refused.value)
    assert Settings(bootstrap_token="s" * MIN_BOOTSTRAP_TOKEN_LENGTH).bootstrap_token


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:secret@db:5432/entrepot",
        "postgres://app@db1:5432,db2:5433/entrepot?target_session_attrs=read-write",
        "postgresql://app@[::1]:5432/entrepot",
        "postgresql://postgres@/postgres?host=/tmp/pg",
        "postgresql://db/entrepot?user=me@corp",
    ],
)
def test_postgres_urls_asyncpg_reads_are_accepted(url: str) -> None:
    assert Settings(database_url=url).database_url == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mysql://app:hunter2@db/entrepot", "must be a postgresql:// URL"),
        ("db.example.com:5432", "must be a postgresql:// URL"),
        ("postgresql://app:hunter2@db:port/entrepot", "port that is not a number"),
        ("postgresql://app:hunter2@db:70000/entrepot", "port that is not a number"),
        ("postgresql://app:hunter2@[::1/entrepot", "unclosed"),
        ("postgresql://app:1234/hunter2@db/entrepot", "percent-encode"),
    ],
)
def test_malformed_urls_are_refused_without_echoing_them(url: str, why: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(database_url=url)
    [error] = refused.value.errors()
    assert why in error["msg"]
    assert "hunter2" not in error["msg"]


@pytest.mark.parametrize("port", [0, 65536])
def test_the_metrics_port_is_a_port(port: int) -> None:
    with pytest.raises(ValidationError):
        Settings(metrics_port=port)
    assert Settings(metrics_port=9100).metrics_port == 9100
    assert Settings().metrics_port is None


def test_the_nats_url_is_a_nats_url_and_is_never_echoed() -> None:
    assert Settings().nats_url is None  # off by default: nothing is published
    assert Settings(nats_url="nats://user:pw@nats-1:4222").nats_url == "nats://user:pw@nats-1:4222"
    assert Settings(nats_url="").nats_url is None
    with pytest.raises(ValidationError, match="must be nats://HOST:PORT") as refused:
        Settings(nats_url="http://user:hunter2@nats:4222")
    assert "hunter2" not in str(refused.value)
