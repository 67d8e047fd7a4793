"""Response models of the OAuth endpoints (the token request itself is a form, not a model)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ErrorCode = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
]


class TokenResponse(BaseModel):
    """RFC 6749 5.1 successful access token response."""

    access_token: str = Field(description="A signed JWT (EdDSA); verify it with the JWKS.")
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds until the token expires.")
    scope: str = Field(description="Space-separated scopes the token carries.")


class OAuthErrorBody(BaseModel):
    """RFC 6749 5.2 error response. Not a problem document: OAuth mandates this shape."""

    error: ErrorCode
    error_description: str


class Jwk(BaseModel):
    model_config = ConfigDict(extra="allow")
    kty: str
    kid: str
    alg: str
    use: str
    crv: str | None = None
    x: str | None = None


class Jwks(BaseModel):
    keys: list[Jwk]


class ServerMetadata(BaseModel):
    """RFC 8414 authorization server metadata."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str] | None = None
    scopes_supported: list[str]
    response_types_supported: list[str]


class SigningKey(BaseModel):
    kid: str
    alg: str
    created_at: datetime
    retired_at: datetime | None = Field(description="When it stopped signing (null: signs now).")
    publish_until: datetime | None = Field(
        description="When it leaves the JWKS (null while it signs)."
    )


class SigningKeyPage(BaseModel):
    data: list[SigningKey]
    next_cursor: str | None


class RotatedSigningKey(BaseModel):
    kid: str = Field(description="The key that signs from now on.")
    retired: list[str] = Field(description="Keys that stopped signing; still published a while.")
