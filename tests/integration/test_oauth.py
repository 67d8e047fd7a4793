"""OAuth 2.0 client credentials, as a standard client library sees it.

Authlib's async client gets tokens (Basic and form client authentication) and
uses them; PyJWT and the published JWKS verify them as any third party would.
Errors follow RFC 6749 section 5.2, not RFC 9457.
"""

from __future__ import annotations

import asyncio
import base64
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI

from entrepot.oauth.service import server_metadata
from entrepot.settings import Settings
from tests.factories import make_app, make_key, make_org

with warnings.catch_warnings():
    # Authlib prefers the httpx2 package and warns when it falls back to httpx
    # (its deprecate module installs an "always" filter on import, hence the order).
    from authlib.deprecate import AuthlibDeprecationWarning

    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

TOKEN_URL = "/oauth/token"
READ_SCOPES = ["changes:read", "datasets:read", "records:read"]


def oauth_client(
    app: FastAPI, registered: dict[str, Any], method: str = "client_secret_basic", **kwargs: Any
) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=registered["client_id"],
        client_secret=registered["client_secret"],
        token_endpoint_auth_method=method,
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        **kwargs,
    )


async def get_token(app: FastAPI, registered: dict[str, Any], **kwargs: Any) -> str:
    async with oauth_client(app, registered) as oauth:
        token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials", **kwargs)
    access_token: str = token["access_token"]
    return access_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def refused_within_a_second(anon: httpx.AsyncClient, token: str) -> float:
    """Seconds until the token is refused (the revocation bound is one second)."""
    started = time.monotonic()
    while True:
        response = await anon.get("/v1/datasets", headers=bearer(token))
        elapsed = time.monotonic() - started
        if response.status_code == 401:
            return elapsed
        assert response.status_code == 200, response.text
        assert elapsed < 1.0, "the revoked credential still works after one second"
        await asyncio.sleep(0.01)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def registered(client: httpx.AsyncClient) -> dict[str, Any]:
    """A fresh app of a fresh org with the default read scopes, client secret included."""
    org = (await make_org(client))["name"]
    return await make_app(client, org)


# --- a standard client gets and uses a token -------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_gets_a_token_and_uses_it(
    app: FastAPI, anon: httpx.AsyncClient, registered: dict[str, Any], method: str
) -> None:
    async with oauth_client(app, registered, method) as oauth:
        token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] > 0
        assert token["scope"].split() == READ_SCOPES  # all of the app's scopes by default
        datasets = await oauth.get("/v1/datasets")  # Authlib adds the bearer header itself
    assert datasets.status_code == 200, datasets.text
    assert (await anon.get("/v1/datasets", headers=bearer(token["access_token"]))).status_code == (
        200
    )


async def test_token_responses_are_never_cached(
    anon: httpx.AsyncClient, registered: dict[str, Any]
) -> None:
    response = await anon.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        headers=basic(registered["client_id"], registered["client_secret"]),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert set(response.json()) == {"access_token", "token_type", "expires_in", "scope"}


async def test_basic_credentials_are_form_urlencoded_per_rfc_6749(
    anon: httpx.AsyncClient, registered: dict[str, Any]
) -> None:
    """RFC 6749 2.3.1: the client id and secret are form-urlencoded before Basic encoding."""
    encoded_id = registered["client_id"].replace("_", "%5F")
    response = await anon.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        headers=basic(encoded_id, registered["client_secret"]),
    )
    assert response.status_code == 200, response.text


async def test_server_metadata_lets_a_client_discover_the_token_endpoint(
    app: FastAPI, anon: httpx.AsyncClient, registered: dict[str, Any], settings: Settings
) -> None:
    response = await anon.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == settings.token_issuer()
    assert metadata["token_endpoint"] == "http://testserver/oauth/token"
    assert metadata["jwks_uri"] == "http://testserver/.well-known/jwks.json"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert None not in metadata.values()  # RFC 8414: members without a value are omitted
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert "records:read" in metadata["scopes_supported"]
    assert metadata["response_types_supported"] == []
    async with oauth_client(app, registered) as oauth:
        token = await oauth.fetch_token(metadata["token_endpoint"])
    assert token["token_type"] == "Bearer"


def test_metadata_uses_the_configured_public_url() -> None:
    metadata = server_metadata("https://data.example", "https://data.example/")
    assert metadata["token_endpoint"] == "https://data.example/oauth/token"
    assert metadata["jwks_uri"] == "https://data.example/.well-known/jwks.json"


async def test_jwks_is_public_and_cacheable(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "OKP"
        assert key["crv"] == "Ed25519"
        assert key["alg"] == "EdDSA"
        assert key["use"] == "sig"
        assert "d" not in key  # never the private part


# --- scopes --------------------------------------------------------------------------


async def test_scope_narrows_the_token(
    app: FastAPI, anon: httpx.AsyncClient, registered: dict[str, Any]
) -> None:
    narrow = await get_token(app, registered, scope="records:read")
    assert jwt.decode(narrow, options={"verify_signature": False})["scope"] == "records:read"
    listing = await anon.get("/v1/datasets", headers=bearer(narrow))
    assert listing.status_code == 403  # listing the catalog needs datasets:read
    both = await get_token(app, registered, scope="records:read datasets:read")
    assert (await anon.get("/v1/datasets", headers=bearer(both))).status_code == 200


@pytest.mark.parametrize(
    "scope",
    ["records:write", "records:read admin", "no-such-scope", 'records:read"'],
    ids=["beyond-app", "partly-beyond-app", "unknown", "malformed"],
)
async def test_scopes_beyond_the_app_are_invalid_scope(
    app: FastAPI, registered: dict[str, Any], scope: str
) -> None:
    async with oauth_client(app, registered) as oauth:
        with pytest.raises(OAuthError) as refused:
            await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials", scope=scope)
    assert refused.value.error == "invalid_scope"


# --- RFC 6749 5.2 errors ---------------------------------------------------------------

FORM = {"content-type": "application/x-www-form-urlencoded"}
GRANT = b"grant_type=client_credentials"


def error_cases(cid: str, secret: str) -> list[tuple[str, dict[str, str], bytes, int, str]]:
    """(case, headers, body, status, error). ``invalid_grant`` and
    ``unauthorized_client`` cannot arise: client credentials carry no grant to be
    invalid, and every registered application may use the grant."""
    auth = basic(cid, secret)
    post = f"client_id={cid}&client_secret={secret}".encode()
    return [
        ("json body", {**auth, "content-type": "application/json"},
         b'{"grant_type": "client_credentials"}', 400, "invalid_request"),
        ("no content type", auth, GRANT, 400, "invalid_request"),
        ("missing grant_type", {**auth, **FORM}, b"scope=records:read", 400, "invalid_request"),
        ("repeated grant_type", {**auth, **FORM}, GRANT + b"&" + GRANT, 400, "invalid_request"),
        ("not utf-8", {**auth, **FORM}, GRANT + b"&scope=\xff", 400, "invalid_request"),
        ("nul in a parameter", {**auth, **FORM}, GRANT + b"&scope=a%00", 400, "invalid_request"),
        ("basic and form secret", {**auth, **FORM}, GRANT + b"&client_secret=" + secret.encode(),
         400, "invalid_request"),
        ("client_id disagrees with basic", {**auth, **FORM}, GRANT + b"&client_id=app_other",
         400, "invalid_request"),
        ("secret without id", FORM, GRANT + f"&client_secret={secret}".encode(), 400,
         "invalid_request"),
        ("password grant", {**auth, **FORM}, b"grant_type=password&username=a&password=b", 400,
         "unsupported_grant_type"),
        ("authorization_code grant", {**auth, **FORM}, b"grant_type=authorization_code&code=x",
         400, "unsupported_grant_type"),
        ("scope beyond the app", {**auth, **FORM}, GRANT + b"&scope=admin", 400, "invalid_scope"),
        ("wrong secret, basic", {**basic(cid, secret + "x"), **FORM}, GRANT, 401,
         "invalid_client"),
        ("wrong secret, post", FORM, GRANT + b"&" + post + b"x", 401, "invalid_client"),
        ("unknown client", {**basic("app_nobody", secret), **FORM}, GRANT, 401,
         "invalid_client"),
        ("no client authentication", FORM, GRANT, 401, "invalid_client"),
        ("public client (id, no secret)", FORM, GRANT + f"&client_id={cid}".encode(), 401,
         "invalid_client"),
        ("malformed basic", {"Authorization": "Basic !!!", **FORM}, GRANT, 401, "invalid_client"),
        ("basic without colon", {"Authorization": "Basic " + base64.b64encode(b"x").decode(),
                                 **FORM}, GRANT, 401, "invalid_client"),
        ("bearer instead of basic", {"Authorization": "Bearer whatever", **FORM}, GRANT, 401,
         "invalid_client"),
    ]  # fmt: skip


async def test_every_error_follows_rfc_6749_section_5_2(
    anon: httpx.AsyncClient, registered: dict[str, Any]
) -> None:
    cases = error_cases(registered["client_id"], registered["client_secret"])
    for case, headers, body, status, error in cases:
        response = await anon.post(TOKEN_URL, content=body, headers=headers)
        assert (response.status_code, response.json().get("error")) == (status, error), (
            case,
            response.text,
        )
        assert response.headers["content-type"] == "application/json", case  # not a problem
        assert set(response.json()) == {"error", "error_description"}, case
        description = response.json()["error_description"]
        assert all(c not in description for c in '"\\'), case  # RFC 6749 5.2 character set
        assert response.headers["cache-control"] == "no-store", case
        if status == 401:
            assert response.headers["www-authenticate"] == 'Basic realm="entrepot"', case


async def test_get_on_the_token_endpoint_is_not_allowed(anon: httpx.AsyncClient) -> None:
    assert (await anon.get(TOKEN_URL)).status_code == 405


async def test_token_endpoint_errors_are_documented_as_oauth_errors(
    anon: httpx.AsyncClient,
) -> None:
    doc = (await anon.get("/openapi.json")).json()
    operation = doc["paths"]["/oauth/token"]["post"]
    assert "not problem documents" in operation["description"]
    assert "application/x-www-form-urlencoded" in operation["requestBody"]["content"]
    for status in ("400", "401"):
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/OAuthErrorBody"}


# --- audit ---------------------------------------------------------------------------


async def test_issued_tokens_and_failed_client_authentication_are_audited(
    app: FastAPI, anon: httpx.AsyncClient, registered: dict[str, Any], db: asyncpg.Connection
) -> None:
    token = await get_token(app, registered)
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    issued = await db.fetchrow(
        "SELECT actor, app_id::text, outcome, details FROM audit_log "
        "WHERE action = 'credential.issued' AND target = $1",
        f"token:{jti}",
    )
    assert issued is not None
    assert issued["actor"] == f"app:{registered['id']}"
    assert issued["app_id"] == registered["id"]
    assert issued["outcome"] == "success"
    assert '"kind": "access_token"' in issued["details"]
    assert '"scope": "changes:read datasets:read records:read"' in issued["details"]

    wrong = registered["client_secret"] + "-wrong"
    response = await anon.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": wrong,
        },
    )
    assert response.status_code == 401
    denied = await db.fetch(
        "SELECT a.*, a.details::text AS text FROM audit_log a "
        "WHERE action = 'oauth.token' AND app_id = $1::uuid",
        registered["id"],
    )
    assert [(r["outcome"], r["status"]) for r in denied] == [("denied", 401)]
    assert '"reason": "wrong_secret"' in denied[0]["text"]
    assert '"method": "client_secret_post"' in denied[0]["text"]
    for row in denied:
        assert not any(wrong in str(value) for value in row.values()), "the secret is logged"
        assert not any(registered["client_secret"] in str(value) for value in row.values())


# --- signing keys ------------------------------------------------------------------------


async def test_signing_key_rotation_keeps_old_tokens_valid_and_new_ones_verifiable(
    app: FastAPI,
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    registered: dict[str, Any],
    settings: Settings,
) -> None:
    token_a = await get_token(app, registered)
    rotated = await client.post("/v1/admin/signing-keys/rotate")
    assert rotated.status_code == 200, rotated.text
    token_b = await get_token(app, registered)
    kid_a = jwt.get_unverified_header(token_a)["kid"]
    kid_b = jwt.get_unverified_header(token_b)["kid"]
    assert kid_a != kid_b
    assert rotated.json()["kid"] == kid_b
    assert kid_a in rotated.json()["retired"]

    for token in (token_a, token_b):
        assert (await anon.get("/v1/datasets", headers=bearer(token))).status_code == 200

    jwks = (await anon.get("/.well-known/jwks.json")).json()
    published = jwt.PyJWKSet.from_dict(jwks)
    assert {kid_a, kid_b} <= {key.key_id for key in published.keys}
    for token, kid in ((token_a, kid_a), (token_b, kid_b)):
        claims = jwt.decode(
            token,
            published[kid].key,
            algorithms=["EdDSA"],
            audience=settings.token_audience,
            issuer=settings.token_issuer(),
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "scope"]},
        )
        assert claims["sub"] == f"app:{registered['id']}"
        assert claims["scope"] == " ".join(READ_SCOPES)
        assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds
        assert claims["client_id"] == registered["client_id"]

    listing = await client.get("/v1/admin/signing-keys")
    assert listing.status_code == 200
    keys = {k["kid"]: k for k in listing.json()["data"]}
    assert keys[kid_b]["retired_at"] is None
    assert keys[kid_b]["publish_until"] is None
    assert keys[kid_a]["retired_at"] is not None
    assert keys[kid_a]["publish_until"] is not None
    assert all(set(k) == {"kid", "alg", "created_at", "retired_at", "publish_until"}
               for k in keys.values())  # fmt: skip


async def test_signing_key_listing_pages(client: httpx.AsyncClient) -> None:
    await client.post("/v1/admin/signing-keys/rotate")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/admin/signing-keys", params=params)).json()
        seen += [k["kid"] for k in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = (await client.get("/v1/admin/signing-keys", params={"limit": "1000"})).json()
    assert seen == [k["kid"] for k in everything["data"]]
    assert len(seen) >= 2
    bad = await client.get("/v1/admin/signing-keys", params={"cursor": "nonsense"})
    assert bad.status_code == 400


async def test_only_platform_admins_manage_signing_keys(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    org = (await make_org(client))["name"]
    org_admin_app = await make_app(client, org, scopes=["admin", "datasets:read"])
    key = (await make_key(client, org_admin_app["id"]))["key"]
    for method, path in (
        ("POST", "/v1/admin/signing-keys/rotate"),
        ("GET", "/v1/admin/signing-keys"),
    ):
        assert (await anon.request(method, path)).status_code == 401
        assert (await anon.request(method, path, headers=bearer(key))).status_code == 403
    rotated = await client.post("/v1/admin/signing-keys/rotate")
    audited = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'credential.rotated' AND target = $1",
        f"signing_key:{rotated.json()['kid']}",
    )
    assert audited == 1


# --- revocation ------------------------------------------------------------------------


async def test_disabling_the_app_refuses_its_tokens_at_once(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient, registered: dict[str, Any]
) -> None:
    token = await get_token(app, registered)
    assert (await anon.get("/v1/datasets", headers=bearer(token))).status_code == 200
    disabled = await client.patch(f"/v1/apps/{registered['id']}", json={"disabled": True})
    assert disabled.status_code == 200, disabled.text
    refused = await anon.get("/v1/datasets", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    async with oauth_client(app, registered) as oauth:
        with pytest.raises(OAuthError) as no_new_token:
            await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert no_new_token.value.error == "invalid_client"


async def test_a_token_whose_signing_key_is_no_longer_published_is_refused(
    app: FastAPI,
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    registered: dict[str, Any],
    db: asyncpg.Connection,
) -> None:
    token = await get_token(app, registered)
    kid = jwt.get_unverified_header(token)["kid"]
    assert (await anon.get("/v1/datasets", headers=bearer(token))).status_code == 200
    assert (await client.post("/v1/admin/signing-keys/rotate")).status_code == 200
    assert (await anon.get("/v1/datasets", headers=bearer(token))).status_code == 200
    # What happens on its own once the retired key's last token has expired:
    async with db.transaction():
        await db.execute(
            "UPDATE signing_keys SET publish_until = now() - interval '1 second' WHERE kid = $1",
            kid,
        )
        await db.execute("SELECT pg_notify('entrepot_invalidate', 'signing_keys')")
    await refused_within_a_second(anon, token)
    jwks = (await anon.get("/.well-known/jwks.json")).json()
    assert kid not in {key["kid"] for key in jwks["keys"]}
