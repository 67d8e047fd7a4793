"""Stream tickets: a short-lived credential that opens one dataset's event stream.

A browser's ``EventSource`` cannot send an Authorization header, and a key in a URL
lives on in histories, proxies and logs. So a page asks for a ticket (with its
bearer, in a header) and opens the stream with ``?ticket=``, as chat and CI
platforms do. A ticket is a JWT signed with the platform's signing keys: every
replica verifies it with no shared state and no row per ticket. Its header's
``typ`` and its audience are its own, so it never passes as an access token, nor an
access token as a ticket. It names the one feed it opens (dataset and incarnation)
and the credential it was issued through, whose live state is read again at each
use: a revoked key, a disabled app or user, ends its tickets at once. It opens that
stream as often as asked until it expires (``EventSource`` reconnects to the same
URL with Last-Event-ID); a stream already open runs on, re-checking access per page.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote_plus

import asyncpg

from entrepot.auth import repository as repo
from entrepot.auth.principals import key_principal, subject_principal
from entrepot.auth.tokens import InvalidToken, TokenService
from entrepot.principal import Principal
from entrepot.problems import Unauthorized
from entrepot.store.types import Conn

TICKET_TYPE = "entrepot-stream-ticket+jwt"
TICKET_AUDIENCE = "entrepot:stream-ticket"
TICKET_SCOPE = "changes:read"  # all a ticket may ever do, whatever its credential holds
QUERY_PARAMETER = "ticket"
STATE_KEY = "stream_ticket"  # where take_from_query leaves it, in the request's state
_CLAIMS = ["exp", "iat", "sub", "jti", "aud", "iss", "cred", "scope", "ds", "inc"]


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    ticket: str
    expires_at: int  # Unix time


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket whose signature holds: what it opens and whose it is."""

    id: str
    dataset: str
    incarnation: str
    subject: str
    credential: str  # key:<id> or token:<jti>, the credential it was issued through
    scopes: frozenset[str]  # of TICKET_SCOPE, those its credential held when issued
    expires_at: int


class StreamTickets:
    def __init__(self, tokens: TokenService, ttl: int) -> None:
        self.tokens = tokens
        self.ttl = ttl

    async def issue(
        self, principal: Principal, dataset: str, incarnation: str, conn: Conn | None = None
    ) -> IssuedTicket:
        """A ticket for ``principal`` to open ``dataset``'s stream; it never outlives the
        credential it is issued through (an access token's own expiry)."""
        now = int(time.time())
        expires = now + self.ttl
        if principal.expires_at is not None:
            expires = min(expires, principal.expires_at)
        claims = {
            "iss": self.tokens.issuer,
            "aud": TICKET_AUDIENCE,
            "sub": principal.subject,
            "cred": principal.credential,
            "scope": " ".join(sorted(principal.scopes & {TICKET_SCOPE})),
            "ds": dataset,
            "inc": incarnation,
            "iat": now,
            "nbf": now,
            "exp": expires,
            "jti": uuid.uuid4().hex,
        }
        return IssuedTicket(await self.tokens.sign(claims, typ=TICKET_TYPE, conn=conn), expires)

    async def read(self, raw: str) -> Ticket:
        """The ticket's claims, once its signature, kind and lifetime hold (401 otherwise:
        an expired one names its credential, for the audit log)."""
        try:
            claims = await self.tokens.verify_typed(
                raw, typ=TICKET_TYPE, audience=TICKET_AUDIENCE, require=_CLAIMS, verify_exp=False
            )
        except InvalidToken as exc:
            raise Unauthorized(
                f"The stream ticket is not valid: {exc}.", reason="invalid_ticket"
            ) from None
        ticket = Ticket(
            str(claims["jti"]),
            str(claims["ds"]),
            str(claims["inc"]),
            str(claims["sub"]),
            str(claims["cred"]),
            frozenset(str(claims["scope"]).split()) & {TICKET_SCOPE},
            int(claims["exp"]),
        )
        if ticket.expires_at <= time.time():
            raise Unauthorized(
                "The stream ticket has expired: ask for a new one "
                "(POST /v1/datasets/{ds}/changes/tickets).",
                reason="ticket_expired",
                credential=ticket.credential,
            )
        return ticket


async def ticket_principal(pool: asyncpg.Pool, ticket: Ticket) -> Principal:
    """Who the ticket's credential is now (401 if it no longer works), able to do no more
    than read the feed: exactly the caller who asked for it, as far as the feed goes."""
    kind, _, raw_id = ticket.credential.partition(":")
    if kind == "key":
        key_id = uuid.UUID(raw_id)
        row = await repo.find_live_key_by_id(pool, key_id)
        if row is None:
            failed = await repo.why_key_id_failed(pool, key_id)
            raise Unauthorized(
                "The credential this stream ticket was issued through is expired or revoked.",
                reason=failed.reason if failed else "unknown",
                credential=ticket.credential,
                app_id=failed.app_id if failed else None,
                org_id=failed.org_id if failed else None,
            )
        principal = key_principal(row)
    elif kind == "token":
        principal = await subject_principal(
            pool, ticket.subject, ticket.scopes, ticket.credential, ticket.expires_at
        )
    else:
        raise Unauthorized("The stream ticket names no known credential.", reason="invalid_ticket")
    if principal.subject != ticket.subject:  # a signed ticket cannot say so; never trust it
        raise Unauthorized("The stream ticket names no known subject.", reason="invalid_ticket")
    return replace(principal, scopes=principal.scopes & ticket.scopes)


def take_from_query(scope: MutableMapping[str, Any]) -> None:
    """Move ``?ticket=`` out of an HTTP request's query string into its state, before
    anything else sees the request: nothing can then record the ticket with the URL
    (FastAPI's OpenTelemetry spans keep ``url.query``; logs keep no query at all)."""
    query: bytes = scope.get("query_string", b"")
    if b"ticket" not in query and b"%" not in query:
        return  # the common case, at the cost of a scan (a name may be percent-encoded)
    kept: list[bytes] = []
    taken: str | None = None
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        if unquote_plus(name.decode("latin-1")) == QUERY_PARAMETER:
            taken = unquote_plus(value.decode("latin-1"))
        else:
            kept.append(part)
    if taken is not None:
        scope["query_string"] = b"&".join(kept)
        scope.setdefault("state", {})[STATE_KEY] = taken
