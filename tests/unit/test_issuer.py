"""The token issuer is the platform's URL (RFC 8414), the same on every replica."""

from __future__ import annotations

from entrepot.settings import Settings

DB = "postgresql://localhost/x"


def test_an_explicit_issuer_wins() -> None:
    settings = Settings(database_url=DB, issuer="https://id.example", public_url="https://x")
    assert settings.token_issuer() == "https://id.example"


def test_else_the_public_url_without_its_trailing_slash() -> None:
    settings = Settings(database_url=DB, public_url="https://data.example.org/")
    assert settings.token_issuer() == "https://data.example.org"


def test_else_where_the_server_listens_as_a_client_would_reach_it() -> None:
    assert Settings(database_url=DB, port=9000).token_issuer() == "http://127.0.0.1:9000"
    wildcard = Settings(database_url=DB, host="0.0.0.0", port=8000)
    assert wildcard.token_issuer() == "http://127.0.0.1:8000"
