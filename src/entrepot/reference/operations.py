"""Every operation of the API: its operationId, the scope it needs, the problems it
can answer beyond the usual ones, what it does and who may call it.

One entry per route, keyed by ``METHOD /path`` (a test fails for a route
without one, or an entry without a route). ``scope`` is the scope an app
credential (API key or client-credentials token) must hold; it is what the
code enforces (``principal.require_scope``, ``access/policy.py``, and
``role_in``, which makes an app an administrator of its organisation when it
holds ``admin``), and ``tests/integration/test_authorization_matrix.py``
checks it row by row: a key of the natural caller without that scope is
refused. ``None``: any authenticated caller; ``PUBLIC``: no credential at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

PUBLIC: Final = "public"
ANY: Final = None


@dataclass(frozen=True, slots=True)
class Operation:
    id: str
    scope: str | None
    description: str  # "" when the route declares one (a test checks: one source each)
    # Problems this operation answers beyond the ones every operation of its kind can
    # (document.py: usual_problems); the text says when, or "" for the usual wording.
    problems: Mapping[int, str] = field(default_factory=dict)
    summary: str | None = None  # only when the route declares none (a test checks)
    example: Any = None  # the request body's example
    responses: Mapping[int, Any] = field(default_factory=dict)  # 2xx examples by status
    # Callable with no credential at all on open datasets (auth/authenticate.py:
    # authenticate_reader); a test checks it is set on exactly those routes.
    open_data: bool = False


_ORG_ADMIN = (
    "**Who:** an administrator of the organisation: a user with the owner or admin role, "
    "or one of its apps holding `admin`; or a platform administrator."
)
_PLATFORM_ADMIN = "**Who:** platform administrators only (an admin key or an admin user)."
_ANYONE = "**Who:** any authenticated caller."
_APP_OR_ADMIN = (
    "**Who:** the app itself, an administrator of its organisation, or a platform "
    "administrator; anyone else gets 404."
)
_HOOK_WHO = (
    "**Who:** the webhook's app with `webhooks:manage`, an administrator of the app's "
    "organisation, or a platform administrator; anyone else gets 404."
)
_RECORD_READ = (
    "**Who:** any caller with `records:read` on the dataset: its organisation, a live grant, "
    "any authenticated caller if the dataset is public, and anyone, with no credential, if "
    "it is open. A narrowed grant sees only its fields and rows."
)
_RECORD_WRITE = (
    "**Who:** the owning organisation, or an app whose grant includes `records:write` "
    "(a narrowed grant is read-only: 403)."
)
_HIDDEN = "The dataset does not exist or is not visible to you."
_RECORD_404 = "The dataset or the record does not exist, or the dataset is not visible to you."
_PRECONDITION = "If-Match does not match the record's current ETag."
_IF_MATCH_NEEDED = "The dataset requires If-Match on writes and none was sent."
_REUSED_KEY = "The Idempotency-Key was used before with another request."
_JSON_ONLY = "The body is not JSON (`application/json` or a `+json` type)."
_NOT_ADMIN = "Authenticated, but not a platform administrator."

OVERVIEW = """Entrepot: publish datasets, grant access, read, write and sync records.

**Authentication.** Send `Authorization: Bearer <token>`: an API key, or an access
token from `POST /oauth/token` (an app's client credentials) or `POST /v1/auth/token`
(a user's password). Each operation lists the scope an app's credential needs; users
are allowed by their organisation role. A missing or bad credential is a 401, a
credential that may not do this a 403, and what you may not see a 404.

**Errors** are RFC 9457 problem documents (`application/problem+json`) with `type`,
`title`, `status`, `detail`, `request_id` and, for validation failures, `errors`
(`{path, message}`). Each operation declares the problems it can answer.

**Lists** take `limit` (1 to 1000, default 50) and an opaque `cursor`, and answer
`{"data": [...], "next_cursor": "..." | null}`.

**Writes** to records take `Idempotency-Key` (a retry replays the first answer) and
`If-Match` (the record's ETag). Every answer carries `X-Request-ID` (yours echoed, if
sent); an authenticated one also `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset` (platform administrators are not limited). Over the plan's limit or
quota: a 429 with `Retry-After`."""

TAGS: dict[str, str] = {
    "operations": "Probes for load balancers and orchestrators; no credential.",
    "orgs": "Organisations own datasets and applications; members have roles.",
    "datasets": "The catalog: each dataset's schema, primary key, indexes and visibility.",
    "records": "Read and write one record, or list them with filters, sorts and cursors.",
    "bulk": "Import NDJSON or CSV, export every record (NDJSON, CSV, Parquet, Arrow), streamed.",
    "changes": "The change feed: every committed change in order, by long poll or SSE.",
    "access": "Access requests and the grants they become, optionally narrowed.",
    "apps": "Applications, their API keys and OAuth client secrets.",
    "oauth": "OAuth 2.0 client credentials, the keys that verify tokens, the metadata.",
    "users": "People: accounts, password sign-in, who am I.",
    "webhooks": "Signed deliveries of record events (Standard Webhooks), retries, replay.",
    "plans and usage": "Rate limits and quotas, and what each application used.",
    "audit": "Every mutation and every denied access, append-only.",
    "admin": "Platform administration: token signing keys.",
    "reference": "This reference's landing page.",
}

# The quickstart's dataset and record (docs/quickstart.md), so that "Try it out" after
# the quickstart finds them.
_PRODUCT = {"sku": "w-1", "name": "Widget", "price": 9.5}
_ENVELOPE = {
    "id": "w-1",
    "version": 1,
    "data": _PRODUCT,
    "created_at": "2026-01-05T10:00:00Z",
    "updated_at": "2026-01-05T10:00:00Z",
}

OPERATIONS: dict[str, Operation] = {
    # --- the platform -----------------------------------------------------------------
    "GET /": Operation(
        "platform.home",
        PUBLIC,
        "For a browser (`Accept: text/html`), a page linking the API reference (`/docs`, "
        "`/redoc`), the OpenAPI document (`/openapi.json`) and the documentation. Any other "
        "client gets the 404 problem it always got here: the API lives under `/v1`.",
        problems={404: "Not asked for HTML: there is no resource at `/`."},
    ),
    "GET /healthz": Operation(
        "health.live",
        PUBLIC,
        "Answers without touching the store. 503 names the loops that stopped making "
        "progress (`event-loop` when the event loop itself froze); restart the process.",
    ),
    "GET /readyz": Operation(
        "health.ready",
        PUBLIC,
        "200 when the store answers and the replica is not draining; 503 otherwise, with "
        "each check's state (a load balancer takes the replica out of rotation). Redis and "
        "the webhook workers are reported but only degrade, never fail, readiness.",
        problems={},
    ),
    # --- organisations and members ----------------------------------------------------
    "POST /v1/orgs": Operation(
        "orgs.create",
        "admin",
        "Creates an organisation, which owns datasets and applications. " + _PLATFORM_ADMIN,
        problems={403: _NOT_ADMIN, 409: "An organisation with this name exists."},
        summary="Create an organisation",
        example={"name": "acme", "title": "Acme Corporation"},
    ),
    "GET /v1/orgs": Operation(
        "orgs.list",
        ANY,
        "The organisations you belong to (all of them for a platform administrator), "
        "by name. " + _ANYONE,
        summary="List your organisations",
    ),
    "GET /v1/orgs/{org}": Operation(
        "orgs.get",
        ANY,
        "One organisation. **Who:** its members and apps, and platform administrators; "
        "anyone else gets 404.",
        summary="Get an organisation",
        problems={404: "No such organisation, or you are not part of it."},
    ),
    "POST /v1/orgs/{org}/members": Operation(
        "orgs.members.add",
        "admin",
        "Adds an existing user (by email) with a role, or changes the role of a member "
        "(200). Only an owner may make or unmake owners. " + _ORG_ADMIN,
        problems={
            403: "You do not administer the organisation (or only an owner may do this).",
            404: "No such organisation, or you are not part of it.",
            409: "The change would leave the organisation without an owner.",
            422: "Invalid body, or no user has this email.",
        },
        example={"email": "ada@example.org", "role": "admin"},
    ),
    "GET /v1/orgs/{org}/members": Operation(
        "orgs.members.list",
        "admin",
        "The organisation's members and their roles. **Who:** its users; its apps only "
        "with `admin`; platform administrators.",
        problems={403: "An app of the organisation without `admin`."},
    ),
    "DELETE /v1/orgs/{org}/members/{user_id}": Operation(
        "orgs.members.remove",
        "admin",
        "Removes a member; its tokens lose the organisation's access at once, on every "
        "replica. The last owner cannot be removed (409). " + _ORG_ADMIN,
        problems={
            403: "You do not administer the organisation.",
            409: "The member is the organisation's last owner.",
        },
    ),
    # --- users --------------------------------------------------------------------------
    "POST /v1/users": Operation(
        "users.create",
        "admin",
        "Creates a person's account with a password (hashed with Argon2). Add it to "
        "organisations with `POST /v1/orgs/{org}/members`. " + _PLATFORM_ADMIN,
        problems={403: _NOT_ADMIN, 409: "A user with this email exists."},
        example={"email": "ada@example.org", "password": "correct horse battery staple"},
    ),
    "GET /v1/me": Operation(
        "me.get",
        ANY,
        "Who the credential in `Authorization` is, as every request made with it is "
        "judged: its kind (`admin`, `app` or `user`), the key's or token's id, its scopes, "
        "the application (and its organisation) or the person (and their memberships), and "
        "an application's grants in force now, narrowed as the application sees them. " + _ANYONE,
        problems={404: "The app or user behind the credential was deleted meanwhile."},
    ),
    "GET /v1/users/me": Operation(
        "users.me",
        ANY,
        "The signed-in user (from `POST /v1/auth/token`) and its memberships. "
        "**Who:** a user's access token; app and admin keys get 404 (no user stands behind "
        "them).",
        problems={404: "The credential is not a user's."},
    ),
    "PATCH /v1/users/{user_id}": Operation(
        "users.update",
        "admin",
        "Disables a user (its tokens stop working at once, on every replica) or enables it "
        "again. " + _PLATFORM_ADMIN,
        problems={403: _NOT_ADMIN},
        example={"disabled": True},
    ),
    "POST /v1/auth/token": Operation(
        "auth.login",
        PUBLIC,
        "Exchanges a user's email and password for a short-lived access token (a JWT, "
        "`Authorization: Bearer <token>`). Repeated failures from one address or for one "
        "account are slowed down (429 with Retry-After). **Who:** anyone; the credential is "
        "the body.",
        problems={
            401: "Wrong email or password, or the user is disabled.",
            429: "Too many failed sign-ins; retry after Retry-After seconds.",
            503: "",
        },
        example={"email": "ada@example.org", "password": "correct horse battery staple"},
    ),
    # --- datasets -----------------------------------------------------------------------
    "POST /v1/datasets": Operation(
        "datasets.create",
        "admin",
        "Publishes a dataset: its record JSON Schema (2020-12), an optional primary key "
        "(a field used as the record id), indexes for filters and sorts, and visibility "
        "(`restricted`: a grant is needed; `public`: any authenticated caller reads it; "
        "`open`: anyone reads it with no credential, rate limited per client address). "
        "Answers 201 with `Location`. " + _ORG_ADMIN,
        problems={
            403: "You do not administer the organisation.",
            409: "A dataset with this name exists.",
            422: "Invalid body or schema, or an organisation you cannot see.",
        },
        summary="Create a dataset",
        example={
            "name": "products",
            "org": "acme",
            "title": "Products",
            "description": "Everything we sell.",
            "schema": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string"},
                    "name": {"type": "string"},
                    "price": {"type": "number", "minimum": 0},
                },
                "required": ["sku", "name"],
            },
            "primary_key": "sku",
            "indexes": ["price"],
            "visibility": "restricted",
            "tags": ["shop"],
            "license": "CC-BY-4.0",
            "license_url": "https://creativecommons.org/licenses/by/4.0/",
            "contact": {"name": "Acme data team", "email": "data@acme.example"},
        },
    ),
    "GET /v1/datasets": Operation(
        "datasets.list",
        "datasets:read",
        "The catalog: the datasets you may see (your organisations', those granted to you, "
        "public and open ones), searchable by text, organisation and tag. "
        "**Who:** any caller with `datasets:read`; with no credential, the open datasets.",
        summary="Search the catalog",
        open_data=True,
    ),
    "GET /v1/datasets/{ds}": Operation(
        "datasets.get",
        "datasets:read",
        "A dataset's metadata and schema (narrowed to the fields a narrowed grant sees). "
        "**Who:** any caller with `datasets:read` on it; anyone if it is open.",
        summary="Get a dataset",
        problems={403: "Your access does not include `datasets:read`.", 404: _HIDDEN},
        open_data=True,
    ),
    "PATCH /v1/datasets/{ds}": Operation(
        "datasets.update",
        "admin",
        "Changes metadata (`null` removes a licence or contact), visibility, indexes (built "
        "concurrently) or the schema. A schema "
        "change that stored records would not satisfy, or a new primary key, is refused "
        "(409). " + _ORG_ADMIN,
        summary="Update a dataset",
        problems={
            403: "You do not administer the owning organisation.",
            404: _HIDDEN,
            409: "Stored records or live grants would not fit the change.",
        },
        example={"title": "All products", "tags": ["shop", "prices"], "license": "ODbL-1.0"},
    ),
    "DELETE /v1/datasets/{ds}": Operation(
        "datasets.delete",
        "admin",
        "Deletes the dataset, its records, its change feed and its grants. A dataset "
        "created again under the name is a new incarnation: feed positions of the old one "
        "answer 410. " + _ORG_ADMIN,
        summary="Delete a dataset",
        problems={403: "You do not administer the owning organisation.", 404: _HIDDEN},
    ),
    # --- records ------------------------------------------------------------------------
    "GET /v1/datasets/{ds}/records": Operation(
        "records.list",
        "records:read",
        "Records in pages (`{data, next_cursor}`), filtered on any field, sorted, with "
        "chosen fields. A filter or sort on an unindexed field of a large dataset is "
        "refused (400 naming the index to add). " + _RECORD_READ,
        problems={
            400: "An unknown field or operator, a bad value, an invalid cursor, or a scan a "
            "large dataset needs an index for.",
            403: "Your access does not include `records:read`.",
            404: _HIDDEN,
            503: "The list took too long; narrow it or retry.",
        },
        responses={200: {"data": [_ENVELOPE], "next_cursor": "eyJwIjpbIncxIl0sInEiOiIxIn0"}},
        open_data=True,
    ),
    "POST /v1/datasets/{ds}/records": Operation(
        "records.create",
        "records:write",
        "The body is the record itself. Answers 201 with the record envelope, `Location` "
        "and `ETag`. With `Idempotency-Key`, a retry replays the first answer. " + _RECORD_WRITE,
        problems={
            403: "Your access does not include `records:write`, or your grant is narrowed.",
            404: _HIDDEN,
            409: "A record with this id exists, or the same Idempotency-Key is in flight.",
            415: _JSON_ONLY,
            422: "The record does not match the dataset's schema (`errors` has JSON "
            "Pointers), or the Idempotency-Key was used with another body.",
            428: _IF_MATCH_NEEDED,
        },
        example={"sku": "w-2", "name": "Gadget", "price": 12},
        responses={
            201: {**_ENVELOPE, "id": "w-2", "data": {"sku": "w-2", "name": "Gadget", "price": 12}}
        },
    ),
    "GET /v1/datasets/{ds}/records/{record_id}": Operation(
        "records.get",
        "records:read",
        "The record envelope `{id, version, data, created_at, updated_at}` with a strong "
        '`ETag: "<version>"` (weak for a field-narrowed grant); `If-None-Match` gives 304. '
        + _RECORD_READ,
        problems={403: "Your access does not include `records:read`.", 404: _RECORD_404},
        responses={200: _ENVELOPE},
        open_data=True,
    ),
    "PUT /v1/datasets/{ds}/records/{record_id}": Operation(
        "records.replace",
        "records:write",
        "Replaces the record with the body (200), or creates it (201). With a primary key, "
        "the body's key must equal the path's id (422). Honours If-Match, "
        "`If-None-Match: *` and Idempotency-Key. " + _RECORD_WRITE,
        problems={
            403: "Your access does not include `records:write`, or your grant is narrowed.",
            404: _HIDDEN,
            409: "The same Idempotency-Key is in flight.",
            412: _PRECONDITION + " Or `If-None-Match: *` and the record exists.",
            415: _JSON_ONLY,
            422: "The record does not match the schema, its key disagrees with the path, or "
            "the Idempotency-Key was used before with another request.",
            428: _IF_MATCH_NEEDED,
        },
        example=_PRODUCT,
        responses={200: {**_ENVELOPE, "version": 2}, 201: _ENVELOPE},
    ),
    "PATCH /v1/datasets/{ds}/records/{record_id}": Operation(
        "records.update",
        "records:write",
        "Applies a JSON Merge Patch (RFC 7396: `null` removes a field) and validates the "
        "result against the schema. Honours If-Match and Idempotency-Key. " + _RECORD_WRITE,
        problems={
            403: "Your access does not include `records:write`, or your grant is narrowed.",
            404: _RECORD_404,
            409: "The same Idempotency-Key is in flight.",
            412: _PRECONDITION,
            415: _JSON_ONLY,
            422: "The patched record does not match the schema, or the Idempotency-Key was "
            "used before with another request.",
            428: _IF_MATCH_NEEDED,
        },
        example={"price": 8.75},
        responses={200: {**_ENVELOPE, "version": 2}},
    ),
    "DELETE /v1/datasets/{ds}/records/{record_id}": Operation(
        "records.delete",
        "records:write",
        "Deletes the record (204); the feed gets a delete. Honours If-Match and "
        "Idempotency-Key. " + _RECORD_WRITE,
        problems={
            403: "Your access does not include `records:write`, or your grant is narrowed.",
            404: _RECORD_404,
            409: "The same Idempotency-Key is in flight.",
            412: _PRECONDITION,
            422: _REUSED_KEY,
            428: _IF_MATCH_NEEDED,
        },
    ),
    "POST /v1/datasets/{ds}/import": Operation(
        "records.bulk_import",
        "records:write",
        "Streams NDJSON (one record a line) or CSV (a header row of field names) into the "
        "dataset in batches. All or nothing by default (`on_error=abort`: any failed line, "
        "422 with the lines' errors); `on_error=skip` writes the rest and reports "
        "`{inserted, updated, failed, errors}`. " + _RECORD_WRITE,
        problems={
            400: "An unknown, repeated or invalid query parameter.",
            403: "Your access does not include `records:write`, or your grant is narrowed.",
            404: _HIDDEN,
            408: "The body arrived too slowly.",
            409: "The dataset's schema changed while the body was read; nothing was written.",
            413: "The body exceeds the import limit, or a record the record limit.",
            415: "The body is neither NDJSON nor CSV in UTF-8.",
            422: "With on_error=abort: lines failed; nothing was written.",
            428: "The dataset requires If-Match on writes, which an upsert cannot give.",
            429: "Too many imports and exports of yours run at once, or the rate limit.",
        },
        example='{"sku": "w-1", "name": "Widget", "price": 9.5}\n',
    ),
    "GET /v1/datasets/{ds}/export": Operation(
        "records.bulk_export",
        "records:read",
        "Streams every record you may see, from one snapshot, as NDJSON (bare data, or "
        "envelopes with `envelope=true`) or CSV, which import back unchanged, or for "
        "analytics as Parquet (`format=parquet`) or an Arrow IPC stream (`format=arrow`): "
        "`_id`, `_version`, then a column per visible property typed from the schema, sent "
        "a row group at a time. "
        "`X-Entrepot-Seq` and `X-Entrepot-Incarnation` say where to follow the change feed "
        "from. " + _RECORD_READ,
        problems={
            400: "An unknown, repeated or invalid query parameter, or options that do not "
            "go together.",
            403: "Your access does not include `records:read`.",
            404: _HIDDEN,
            429: "Too many imports and exports of yours run at once, or the rate limit.",
        },
        open_data=True,
    ),
    # --- the change feed ----------------------------------------------------------------
    "GET /v1/datasets/{ds}/changes": Operation(
        "changes.list",
        "changes:read",
        "Every committed change after `after`, in seq order: `{changes: [{seq, op, id, "
        "version, data, at}], last_seq, incarnation}`. `wait` holds the request open until "
        "a change arrives (long poll). `Accept: text/event-stream` streams the same as "
        "Server-Sent Events (`id: <seq>`, resuming from Last-Event-ID); a browser opens it "
        "with `?ticket=` (POST .../changes/tickets) instead of a header. **Who:** any caller "
        "with `changes:read` on the dataset, anyone if it is open; a narrowed grant sees "
        "only its rows and fields.",
        problems={
            400: "A bad `after`, `limit`, `wait` or Last-Event-ID, or a ticket sent with an "
            "Authorization header.",
            401: "No credential, or a stream ticket that is invalid or expired, or whose "
            "credential has been revoked since.",
            403: "Your access does not include `changes:read`, or a stream ticket for another "
            "dataset or outside an event stream.",
            404: _HIDDEN,
            410: "The position cannot be continued from: compacted away, past the head, or "
            "of an earlier incarnation of the dataset. The problem's `reason`, `min_seq`, "
            "`last_seq` and `incarnation` say which; resnapshot from the export.",
        },
        responses={
            200: {
                "changes": [
                    {
                        "seq": 41,
                        "op": "upsert",
                        "id": "w-1",
                        "version": 2,
                        "data": {**_PRODUCT, "price": 8.75},
                        "at": "2026-01-05T10:02:00Z",
                    },
                    {
                        "seq": 42,
                        "op": "delete",
                        "id": "w-7",
                        "version": 4,
                        "data": None,
                        "at": "2026-01-05T10:03:00Z",
                    },
                ],
                "last_seq": 42,
                "incarnation": "1",
            }
        },
        open_data=True,
    ),
    "POST /v1/datasets/{ds}/changes/tickets": Operation(
        "changes.ticket",
        "changes:read",
        "A short-lived ticket that opens this dataset's event stream as you, for a browser's "
        "`EventSource`, which cannot send an Authorization header: open `url` (the feed with "
        "`?ticket=`). The ticket opens only this dataset's event stream, never serves as a "
        "bearer, and may (re)open the stream until `expires_at` "
        "(`ENTREPOT_STREAM_TICKET_SECONDS`, default 60 s; never beyond your credential's own "
        "expiry); your credential is checked again each time it is used, so revoking it ends "
        "its tickets. A stream already open runs on; once the ticket has expired, ask for "
        "another to reconnect. **Who:** any caller with `changes:read` on the dataset; the "
        "stream shows what your access shows (a narrowed grant: its rows and fields).",
        problems={
            403: "Your access does not include `changes:read`.",
            404: _HIDDEN,
        },
        responses={
            200: {
                "ticket": "eyJhbGciOiJFZERTQSIsImtpZCI6IjNmMmEiLCJ0eXAiOiJlbnRyZXBvdC1zdHJl...",
                "expires_at": "2026-01-05T10:03:00Z",
                "url": "https://api.example.com/v1/datasets/products/changes?ticket=eyJhbGci...",
            }
        },
    ),
    # --- applications and keys ----------------------------------------------------------
    "POST /v1/apps": Operation(
        "apps.create",
        "admin",
        "Registers an application of an organisation with the scopes its credentials may "
        "hold (default: read scopes). Answers its `client_id` and `client_secret` for "
        "`/oauth/token`; the secret is shown only here. " + _ORG_ADMIN,
        problems={
            403: "You do not administer the organisation.",
            409: "The organisation has an application with this name.",
            422: "Invalid body, or an organisation you cannot see.",
        },
        example={
            "org": "acme",
            "name": "shop-frontend",
            "description": "Prices on the web shop",
            "scopes": ["datasets:read", "records:read", "changes:read"],
        },
    ),
    "GET /v1/apps": Operation(
        "apps.list",
        ANY,
        "The applications of the organisations you administer; an app without `admin` "
        "sees itself. " + _ANYONE,
    ),
    "GET /v1/apps/{app}": Operation(
        "apps.get",
        "admin",
        "One application (never its secret). " + _APP_OR_ADMIN,
        summary="Get an application",
        problems={404: "No such application, or not yours to see."},
    ),
    "PATCH /v1/apps/{app}": Operation(
        "apps.update",
        "admin",
        "Changes the description, redirect URIs or scopes; `disabled: true` stops all of "
        "its credentials at once; `plan` (platform administrators only) moves it to another "
        "plan. " + _ORG_ADMIN,
        problems={
            403: "The app itself, or not a platform administrator for `plan`.",
            404: "No such application, or not yours to see.",
            422: "Invalid body, or an unknown plan.",
        },
        example={"description": "Prices and stock on the web shop", "disabled": False},
    ),
    "DELETE /v1/apps/{app}": Operation(
        "apps.delete",
        "admin",
        "Deletes the application, its keys, grants and webhooks; its credentials stop at "
        "once. " + _ORG_ADMIN,
        summary="Delete an application",
        problems={404: "No such application, or not yours to manage."},
    ),
    "POST /v1/apps/{app}/rotate-secret": Operation(
        "apps.rotate_secret",
        "admin",
        "Issues a new OAuth client secret, shown only here; the old one stops at once. "
        + _ORG_ADMIN,
        problems={
            403: "The app itself: only an administrator rotates its secret.",
            404: "No such application, or not yours to see.",
        },
    ),
    "POST /v1/apps/{app}/keys": Operation(
        "apps.keys.create",
        "admin",
        "Issues an API key with a subset of the app's scopes (default: all of them) and "
        "an optional expiry; the key is shown only here and stored hashed. " + _ORG_ADMIN,
        problems={
            403: "The app itself: only an administrator issues keys.",
            404: "No such application, or not yours to see.",
            422: "Invalid body, or scopes the app does not hold.",
        },
        example={"name": "production", "scopes": ["records:read"]},
    ),
    "GET /v1/apps/{app}/keys": Operation(
        "apps.keys.list",
        "admin",
        "The app's keys: prefix, scopes, expiry, last use; never the secret. " + _ORG_ADMIN,
        problems={
            403: "The app itself: only an administrator lists its keys.",
            404: "No such application, or not yours to see.",
        },
    ),
    "DELETE /v1/apps/{app}/keys/{key_id}": Operation(
        "apps.keys.revoke",
        "admin",
        "Revokes the key at once, on every replica. " + _ORG_ADMIN,
        problems={
            403: "The app itself: only an administrator revokes keys.",
            404: "No such application or key, or not yours to see.",
        },
    ),
    "POST /v1/apps/{app}/keys/{key_id}/rotate": Operation(
        "apps.keys.rotate",
        "admin",
        "Issues a replacement key with the same name and scopes; the old key keeps working "
        "for `overlap_seconds` (bounded by the platform's maximum), then stops. " + _ORG_ADMIN,
        problems={
            403: "The app itself: only an administrator rotates keys.",
            404: "No such application or key, or not yours to see.",
            409: "The key is revoked.",
        },
        example={"overlap_seconds": 3600},
    ),
    "GET /v1/apps/{app}/usage": Operation(
        "apps.usage",
        "admin",
        "Request counts by period (hour or UTC day), endpoint class, status and dataset "
        "(`dataset`: only that one's), for billing and dashboards; includes this "
        "replica's latest counts. " + _APP_OR_ADMIN,
        problems={
            400: "A bad `granularity`, `from`, `to` or `dataset`.",
            404: "No such application, or not yours to see.",
        },
    ),
    "GET /v1/datasets/{ds}/usage": Operation(
        "datasets.usage",
        "admin",
        "Every app's requests to the dataset by period (hour or UTC day), app, endpoint "
        "class and status: who uses what a provider publishes. Includes this replica's "
        "latest counts. " + _ORG_ADMIN,
        problems={
            400: "A bad `granularity`, `from` or `to`.",
            403: "You do not administer the owning organisation.",
            404: _HIDDEN,
        },
    ),
    # --- OAuth 2.0 ----------------------------------------------------------------------
    "POST /oauth/token": Operation(
        "oauth.token",
        PUBLIC,
        "",
        problems={
            413: "",
            429: "Too many failed client authentications from your address, or the app's "
            "rate limit.",
            503: "",
        },
        example={"grant_type": "client_credentials", "scope": "datasets:read records:read"},
    ),
    "GET /.well-known/jwks.json": Operation(
        "oauth.jwks",
        PUBLIC,
        "Every key that signs now or signed a token that has not yet expired (JWKS, "
        "RFC 7517). Cache it for up to 5 minutes.",
        problems={503: ""},
    ),
    "GET /.well-known/oauth-authorization-server": Operation(
        "oauth.metadata",
        PUBLIC,
        "Where the token endpoint and the keys are, and what the server supports (RFC 8414).",
    ),
    "POST /v1/admin/signing-keys/rotate": Operation(
        "signing_keys.rotate",
        "admin",
        "A new key signs from now on; retired keys stay in the JWKS, and keep verifying, "
        "until every token they signed has expired. " + _PLATFORM_ADMIN,
        problems={403: _NOT_ADMIN},
    ),
    "GET /v1/admin/signing-keys": Operation(
        "signing_keys.list",
        "admin",
        "Every token signing key, current and retired, with its state; never private "
        "material. " + _PLATFORM_ADMIN,
        problems={403: _NOT_ADMIN},
    ),
    # --- the audit log ------------------------------------------------------------------
    "GET /v1/audit": Operation(
        "audit.list",
        "admin",
        "Every mutation and every denied access, newest first: actor, app, action, "
        "target, outcome, request id, time. Append-only. **Who:** platform administrators "
        "(everything) and organisation administrators (their organisations' rows).",
        problems={
            403: "You administer no organisation.",
            404: "`org` names an organisation you are not part of.",
        },
    ),
    "GET /v1/audit/export": Operation(
        "audit.export",
        "admin",
        "The same rows as `GET /v1/audit`, all of them, as NDJSON, streamed. **Who:** as "
        "for `GET /v1/audit`.",
        problems={
            403: "You administer no organisation.",
            404: "`org` names an organisation you are not part of.",
            429: "Too many exports of yours run at once, or the rate limit.",
        },
    ),
    # --- access requests and grants -----------------------------------------------------
    "POST /v1/datasets/{ds}/access-requests": Operation(
        "access_requests.create",
        ANY,
        "Asks the dataset's organisation for access on behalf of an application, with the "
        "scopes wanted and a reason. Answers 201 with `status: pending` (or `approved` at "
        "once when the dataset auto-approves read scopes). **Who:** the app itself, or an "
        "administrator of its organisation.",
        problems={
            404: _HIDDEN,
            409: "The app already has a pending request for this dataset.",
            422: "Invalid body, or an application you may not ask for (hidden as 422).",
        },
        example={
            "app": "3f1c2a7e-8b4d-4e0f-9a61-2d5b7c9e1f30",
            "scopes": ["datasets:read", "records:read", "changes:read"],
            "reason": "Show prices on our web shop",
        },
    ),
    "GET /v1/access-requests": Operation(
        "access_requests.list",
        ANY,
        "Requests made by your apps, and requests for the datasets of the organisations "
        "you administer (to decide), newest first. " + _ANYONE,
    ),
    "GET /v1/access-requests/{request_id}": Operation(
        "access_requests.get",
        ANY,
        "One access request and its decision. **Who:** the requesting app and its "
        "organisation's administrators, and the dataset's organisation administrators.",
        summary="Get an access request",
        problems={404: "No such request, or not yours to see."},
    ),
    "POST /v1/access-requests/{request_id}/approve": Operation(
        "access_requests.approve",
        "admin",
        "Approves a pending request and creates the grant, optionally narrowed: fewer "
        "scopes, only some `fields`, a `row_filter` (the list filter syntax as an object), "
        "an expiry. A narrowed grant cannot include `records:write`. **Who:** an "
        "administrator of the dataset's organisation.",
        problems={
            403: "You do not administer the dataset's organisation.",
            404: "No such request, or not yours to see.",
            409: "The request is no longer pending.",
            422: "Invalid narrowing.",
        },
        example={
            "note": "Prices only",
            "fields": ["sku", "price"],
            "row_filter": {"price": {"lt": 50}},
            "expires_at": "2026-12-31T00:00:00Z",
        },
    ),
    "POST /v1/access-requests/{request_id}/reject": Operation(
        "access_requests.reject",
        "admin",
        "Rejects a pending request with a note the requester reads. **Who:** an "
        "administrator of the dataset's organisation.",
        problems={
            403: "You do not administer the dataset's organisation.",
            404: "No such request, or not yours to see.",
            409: "The request is no longer pending.",
        },
        example={"note": "We do not share this dataset outside the group."},
    ),
    "GET /v1/grants": Operation(
        "grants.list",
        ANY,
        "Grants held by your apps, and grants on the datasets of the organisations you "
        "administer. " + _ANYONE,
    ),
    "GET /v1/grants/{grant_id}": Operation(
        "grants.get",
        ANY,
        "One grant: its scopes, narrowing and expiry. **Who:** the grantee app and its "
        "organisation's administrators, and the dataset's organisation administrators.",
        summary="Get a grant",
        problems={404: "No such grant, or not yours to see."},
    ),
    "DELETE /v1/grants/{grant_id}": Operation(
        "grants.revoke",
        "admin",
        "Revokes the grant at once, on every replica. **Who:** an administrator of the "
        "dataset's organisation or of the grantee app's.",
        problems={
            403: "The grantee app itself: only an administrator revokes.",
            404: "No such grant, or not yours to see.",
        },
    ),
    # --- webhooks -----------------------------------------------------------------------
    "POST /v1/apps/{app}/webhooks": Operation(
        "webhooks.create",
        "webhooks:manage",
        "Subscribes an HTTPS endpoint to record events of datasets the app can read the "
        "changes of. Answers the signing secret (`whsec_...`, Standard Webhooks), shown "
        "only here. URLs resolving to private, loopback or link-local addresses are "
        "refused (422). " + _HOOK_WHO,
        problems={
            403: "The app itself without `webhooks:manage`.",
            404: "No such application, or not yours to see.",
            422: "Invalid body, a refused URL, or a dataset whose changes the app cannot read.",
        },
        example={
            "url": "https://shop.example.com/hooks/entrepot",
            "datasets": ["products"],
            "events": ["record.created", "record.updated", "record.deleted"],
        },
    ),
    "GET /v1/apps/{app}/webhooks": Operation(
        "webhooks.list",
        "webhooks:manage",
        "The app's webhooks (never their secrets). " + _HOOK_WHO,
        problems={
            403: "The app itself without `webhooks:manage`.",
            404: "No such application, or not yours to see.",
        },
    ),
    "GET /v1/webhooks/{webhook}": Operation(
        "webhooks.get",
        "webhooks:manage",
        "One webhook. " + _HOOK_WHO,
        summary="Get a webhook",
        problems={
            403: "The app itself without `webhooks:manage`.",
            404: "No such webhook, or not yours to see.",
        },
    ),
    "PATCH /v1/webhooks/{webhook}": Operation(
        "webhooks.update",
        "webhooks:manage",
        "Changes the URL, datasets or events, or disables it (`disabled: true`) and "
        "enables it again. " + _HOOK_WHO,
        problems={
            403: "The app itself without `webhooks:manage`.",
            404: "No such webhook, or not yours to see.",
            422: "Invalid body, a refused URL, or a dataset the app cannot follow.",
        },
        example={"events": ["record.created", "record.deleted"]},
    ),
    "DELETE /v1/webhooks/{webhook}": Operation(
        "webhooks.delete",
        "webhooks:manage",
        "Deletes the webhook; deliveries not yet made are cancelled. " + _HOOK_WHO,
        summary="Delete a webhook",
        problems={
            403: "The app itself without `webhooks:manage`.",
            404: "No such webhook, or not yours to see.",
        },
    ),
    "GET /v1/webhooks/{webhook}/deliveries": Operation(
        "webhooks.deliveries.list",
        "webhooks:manage",
        "Each delivery, newest first, with its state, attempts and the receiver's last "
        "answer. " + _HOOK_WHO,
        problems={
            403: "The app itself without `webhooks:manage`.",
            404: "No such webhook, or not yours to see.",
        },
    ),
    "POST /v1/webhooks/{webhook}/deliveries/{delivery}/retry": Operation(
        "webhooks.deliveries.retry",
        "webhooks:manage",
        "Queues a failed, delivered or cancelled delivery again, due now, with its attempts "
        "counted afresh. " + _HOOK_WHO,
        problems={
            403: "The app itself without `webhooks:manage`.",
            404: "No such webhook or delivery, or not yours to see.",
            409: "The webhook is disabled, or the event is already queued.",
        },
    ),
    "POST /v1/webhooks/{webhook}/replay": Operation(
        "webhooks.replay",
        "webhooks:manage",
        "Delivers again every event of one of the webhook's datasets from `from_seq`, while "
        "those changes are still in the feed. " + _HOOK_WHO,
        problems={
            403: "The app itself without `webhooks:manage`.",
            404: "No such webhook, or not yours to see.",
            409: "The webhook or its application is disabled.",
            422: "Invalid body, or a dataset the webhook does not follow.",
        },
        example={"dataset": "products", "from_seq": 1},
    ),
    "POST /v1/webhooks/{webhook}/rotate-secret": Operation(
        "webhooks.rotate_secret",
        "webhooks:manage",
        "Issues a new signing secret, shown only here; during `overlap_seconds` deliveries "
        "carry both signatures (space-separated) so the receiver can switch. " + _HOOK_WHO,
        problems={
            403: "The app itself without `webhooks:manage`.",
            404: "No such webhook, or not yours to see.",
        },
        example={"overlap_seconds": 86400},
    ),
    # --- plans --------------------------------------------------------------------------
    "POST /v1/plans": Operation(
        "plans.create",
        "admin",
        "A rate limit (requests a second and burst, per app, across replicas) with "
        "optional daily and monthly quotas. " + _PLATFORM_ADMIN,
        problems={403: _NOT_ADMIN, 409: "A plan with this name exists."},
        example={"name": "gold", "rate_per_second": 50, "burst": 100, "daily_quota": 500000},
    ),
    "GET /v1/plans": Operation("plans.list", ANY, "Every plan and its limits. " + _ANYONE),
    "GET /v1/plans/{plan}": Operation(
        "plans.get",
        ANY,
        "A plan and its limits. " + _ANYONE,
        summary="Get a plan",
        problems={404: "No such plan."},
    ),
    "PATCH /v1/plans/{plan}": Operation(
        "plans.update",
        "admin",
        "Changes a plan's limits; every replica applies them within a second. " + _PLATFORM_ADMIN,
        problems={403: _NOT_ADMIN, 404: "No such plan."},
        example={"burst": 200, "daily_quota": 1000000},
    ),
    "DELETE /v1/plans/{plan}": Operation(
        "plans.delete",
        "admin",
        "Deletes a plan no application is on; the default plan cannot be deleted. "
        + _PLATFORM_ADMIN,
        problems={
            403: _NOT_ADMIN,
            404: "No such plan.",
            409: "The default plan, or a plan applications are on.",
        },
    ),
}
