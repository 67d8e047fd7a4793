"""Typed rows are built by position (``Row(*record)``): each statement's columns, by
name and in order, are its row type's fields.

PostgreSQL describes a statement without running it, so every repository function
is called once on an executor that only records its statement, and the statement's
columns are compared with the fields of the row it is turned into. A reordered
SELECT list or a field added on one side only fails here, not in some answer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from entrepot.apps import repository as apps
from entrepot.audit import repository as audit
from entrepot.audit.models import AuditFilter
from entrepot.auth import repository as auth
from entrepot.catalog import repository as catalog
from entrepot.oauth import repository as oauth
from entrepot.portal import repository as portal
from entrepot.streams import lease_repository as leases
from entrepot.streams import repository as streams
from entrepot.users import repository as users
from entrepot.webhooks import deliveries_repository as deliveries
from entrepot.webhooks import dispatch_repository as dispatch
from entrepot.webhooks import queue_repository as queue
from entrepot.webhooks import repository as webhooks

ID = uuid.UUID(int=1)


class Recorder:
    """An executor that keeps the statements whose rows it is asked for, and finds none."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.statements.append(sql)
        return []

    async def fetchrow(self, sql: str, *args: Any) -> None:
        self.statements.append(sql)
        return None

    async def fetchval(self, sql: str, *args: Any) -> None:
        return None

    async def execute(self, sql: str, *args: Any) -> str:
        return "SELECT 0"


Call = Callable[[Any], Awaitable[Any]]

CASES: list[tuple[str, Call, type]] = [
    ("auth.find_live_key", lambda c: auth.find_live_key(c, b""), auth.LiveKey),
    ("auth.why_key_failed", lambda c: auth.why_key_failed(c, b""), auth.KeyFailure),
    ("auth.find_app", lambda c: auth.find_app(c, ID), auth.LiveApp),
    ("auth.find_user", lambda c: auth.find_user(c, ID), auth.LiveUser),
    ("auth.user_roles", lambda c: auth.user_roles(c, ID), auth.OrgRole),
    ("auth.published_signing_keys", auth.published_signing_keys, auth.StoredSigningKey),
    ("apps.get_app", lambda c: apps.get_app(c, ID), apps.App),
    ("apps.find_app_by_client_id", lambda c: apps.find_app_by_client_id(c, "x"), apps.ClientApp),
    (
        "apps.list_apps",
        lambda c: apps.list_apps(c, orgs=None, own_app=None, org_name=None, after=None, limit=1),
        apps.App,
    ),
    ("apps.list_keys", lambda c: apps.list_keys(c, ID, after=None, limit=1), apps.ApiKey),
    ("apps.get_key", lambda c: apps.get_key(c, ID, ID), apps.ApiKey),
    (
        "users.insert_user",
        lambda c: users.insert_user(c, "a@example.org", "hash", is_platform_admin=False),
        users.User,
    ),
    ("users.get_user", lambda c: users.get_user(c, ID), users.User),
    ("users.find_user_by_email", lambda c: users.find_user_by_email(c, "x"), users.User),
    ("users.memberships", lambda c: users.memberships(c, ID), users.Membership),
    ("users.get_org", lambda c: users.get_org(c, "x"), users.OrgRef),
    ("users.get_member", lambda c: users.get_member(c, ID, ID), users.Member),
    ("users.list_members", lambda c: users.list_members(c, ID, after=None, limit=1), users.Member),
    (
        "oauth.list_signing_keys",
        lambda c: oauth.list_signing_keys(c, after=None, limit=1),
        oauth.SigningKey,
    ),
    ("webhooks.get_webhook", lambda c: webhooks.get_webhook(c, ID), webhooks.Webhook),
    (
        "webhooks.list_webhooks",
        lambda c: webhooks.list_webhooks(c, ID, after=None, limit=1),
        webhooks.Webhook,
    ),
    ("webhooks.app_for_dispatch", lambda c: webhooks.app_for_dispatch(c, ID), webhooks.WebhookApp),
    ("dispatch.pairs_behind", dispatch.pairs_behind, dispatch.PairBehind),
    ("dispatch.feed_lag", dispatch.feed_lag, dispatch.FeedLag),
    ("queue.claim", lambda c: queue.claim(c, ID, 1.0, 1), queue.Job),
    ("queue.backlog", lambda c: queue.backlog(c, 1.0), queue.Backlog),
    (
        "deliveries.list_deliveries",
        lambda c: deliveries.list_deliveries(c, ID, status=None, before=None, limit=1),
        deliveries.Delivery,
    ),
    ("deliveries.get_delivery", lambda c: deliveries.get_delivery(c, ID, ID), deliveries.Delivery),
    ("catalog.get_dataset", lambda c: catalog.get_dataset(c, "x"), catalog.DatasetRow),
    (
        "catalog.live_grant_narrowing",
        lambda c: catalog.live_grant_narrowing(c, 1),
        catalog.NarrowingGrant,
    ),
    ("portal.find_session", lambda c: portal.find_session(c, b""), portal.Session),
    (
        "portal.insert_session",
        lambda c: portal.insert_session(c, b"", ID, None, 60),
        portal.Session,
    ),
    ("portal.orgs_of", lambda c: portal.orgs_of(c, ID), portal.OrgRole),
    (
        "audit.page",
        lambda c: audit.page(c, AuditFilter(), orgs=None, before=None, limit=1),
        audit.AuditRow,
    ),
    ("streams.get_stream", lambda c: streams.get_stream(c, ID), streams.StreamRow),
    ("streams.list_streams", streams.list_streams, streams.StreamRow),
    ("streams.get_grant", lambda c: streams.get_grant(c, ID), streams.GrantRow),
    ("leases.current", lambda c: leases.current(c, "x"), leases.LeaseRow),
]


async def _statement(call: Call) -> str:
    recorder = Recorder()
    with contextlib.suppress(AssertionError):  # one that expects its row found none
        await call(recorder)
    assert len(recorder.statements) == 1, recorder.statements
    return recorder.statements[0]


@pytest.mark.parametrize(("name", "call", "row"), CASES, ids=[c[0] for c in CASES])
async def test_each_statement_names_its_rows_fields_in_order(
    database_url: str, name: str, call: Call, row: type
) -> None:
    sql = await _statement(call)
    conn = await asyncpg.connect(database_url)
    try:
        statement = await conn.prepare(sql)
        columns = [attribute.name for attribute in statement.get_attributes()]
    finally:
        await conn.close()
    assert columns == [field.name for field in dataclasses.fields(row)]


def test_every_row_type_of_these_repositories_is_checked() -> None:
    modules = [
        *(apps, auth, oauth, users, webhooks, dispatch, queue, deliveries, catalog, audit),
        *(streams, leases, portal),
    ]
    rows = {
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type)
        and dataclasses.is_dataclass(value)
        and value.__module__ == module.__name__
        and hasattr(value, "of")
    }
    assert rows == {row for _, _, row in CASES}
