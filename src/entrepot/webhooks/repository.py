"""SQL for webhook subscriptions: the webhooks, the datasets each follows, its app.

Rows come back as :class:`Webhook` and :class:`WebhookApp`, never as string-keyed
records. The feed cursors and the enqueueing are in ``dispatch_repository``, the
delivery queue in ``queue_repository``, the delivery log in ``deliveries_repository``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from entrepot.store.types import Conn, Executor
from entrepot.webhooks.queue_repository import OPEN

WEBHOOK_COLUMNS = """
    w.id, w.app_id, a.org_id, w.url, w.events, w.disabled_at, w.disabled_reason,
    CASE WHEN w.previous_secret_until > now() THEN w.previous_secret_until END
        AS previous_secret_expires_at,
    w.created_at, w.updated_at, w.removed_datasets::text AS removed_datasets,
    coalesce((SELECT array_agg(d.name ORDER BY wd.position)
              FROM webhook_datasets wd JOIN datasets d ON d.id = wd.dataset_id
              WHERE wd.webhook_id = w.id), '{}') AS datasets
"""


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook (``WEBHOOK_COLUMNS``): the datasets it follows in their order;
    ``removed_datasets`` is the JSON text of the column (parsed where it is shown)."""

    id: uuid.UUID
    app_id: uuid.UUID
    org_id: uuid.UUID
    url: str
    events: list[str]
    disabled_at: datetime | None
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    removed_datasets: str
    datasets: list[str]

    @classmethod
    def of(cls, row: asyncpg.Record) -> Webhook:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class WebhookApp:
    """A webhook's app, enabled: whose authority its deliveries carry."""

    id: uuid.UUID
    org_id: uuid.UUID
    scopes: list[str]

    @classmethod
    def of(cls, row: asyncpg.Record) -> WebhookApp:
        return cls(*row)


async def insert_webhook(
    conn: Conn, app_id: uuid.UUID, url: str, events: list[str], secret: str
) -> uuid.UUID:
    webhook_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO webhooks (app_id, url, events, secret) VALUES ($1, $2, $3, $4) RETURNING id",
        app_id,
        url,
        events,
        secret,
    )
    return webhook_id


async def set_datasets(conn: Conn, webhook_id: uuid.UUID, dataset_ids: Sequence[int]) -> list[int]:
    """Follow exactly ``dataset_ids``; a newly followed dataset starts at its current head.

    Returns the datasets no longer followed.
    """
    removed: list[int] = [
        r["dataset_id"]
        for r in await conn.fetch(
            "DELETE FROM webhook_datasets WHERE webhook_id = $1 AND NOT dataset_id = ANY($2) "
            "RETURNING dataset_id",
            webhook_id,
            list(dataset_ids),
        )
    ]
    await conn.execute(
        """
        INSERT INTO webhook_datasets (webhook_id, dataset_id, cursor_seq, position)
        SELECT $1, t.id, coalesce(h.last_seq, 0), t.n
        FROM unnest($2::bigint[]) WITH ORDINALITY AS t(id, n)
        LEFT JOIN feed_heads h ON h.dataset_id = t.id
        ON CONFLICT (webhook_id, dataset_id) DO UPDATE SET position = excluded.position
        """,
        webhook_id,
        list(dataset_ids),
    )
    return removed


async def get_webhook(
    conn: Executor, webhook_id: uuid.UUID, *, lock: bool = False
) -> Webhook | None:
    suffix = " FOR UPDATE OF w" if lock else ""
    row = await conn.fetchrow(
        f"SELECT {WEBHOOK_COLUMNS} FROM webhooks w JOIN apps a ON a.id = w.app_id "
        f"WHERE w.id = $1{suffix}",
        webhook_id,
    )
    return None if row is None else Webhook.of(row)


async def list_webhooks(
    conn: Executor, app_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Webhook]:
    rows = await conn.fetch(
        f"""
        SELECT {WEBHOOK_COLUMNS} FROM webhooks w JOIN apps a ON a.id = w.app_id
        WHERE w.app_id = $1 AND ($2::timestamptz IS NULL OR (w.created_at, w.id) > ($2, $3))
        ORDER BY w.created_at, w.id LIMIT $4
        """,
        app_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [Webhook.of(r) for r in rows]


async def update_webhook(
    conn: Conn, webhook_id: uuid.UUID, *, url: str | None, events: list[str] | None
) -> None:
    await conn.execute(
        "UPDATE webhooks SET url = coalesce($2, url), events = coalesce($3, events), "
        "updated_at = now() WHERE id = $1",
        webhook_id,
        url,
        events,
    )


async def disable(conn: Conn, webhook_id: uuid.UUID, reason: str) -> int:
    """Disable the webhook and cancel its unfinished deliveries; returns how many."""
    await conn.execute(
        "UPDATE webhooks SET disabled_at = coalesce(disabled_at, now()), disabled_reason = $2, "
        "updated_at = now() WHERE id = $1",
        webhook_id,
        reason,
    )
    status: str = await conn.execute(
        f"UPDATE webhook_deliveries SET status = 'cancelled', lease = NULL, locked_until = NULL "
        f"WHERE webhook_id = $1 AND status IN {OPEN}",
        webhook_id,
    )
    return int(status.split()[-1])


async def enable(conn: Conn, webhook_id: uuid.UUID) -> int:
    """Re-enable the webhook and revive its cancelled deliveries of datasets it still follows
    (the one its receiver answered 410 to among them), due now, in their order."""
    await conn.execute(
        "UPDATE webhooks SET disabled_at = NULL, disabled_reason = NULL, updated_at = now() "
        "WHERE id = $1",
        webhook_id,
    )
    status: str = await conn.execute(
        """
        UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now(),
               attempts = 0
        WHERE d.webhook_id = $1 AND d.status = 'cancelled'
          AND EXISTS (SELECT 1 FROM webhook_datasets f
                      WHERE f.webhook_id = d.webhook_id AND f.dataset_id = d.dataset_id)
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o
                          WHERE o.webhook_id = d.webhook_id AND o.dataset_id = d.dataset_id
                            AND o.record_id = d.record_id AND o.seq = d.seq
                            AND o.status IN ('pending', 'delivering'))
        """,
        webhook_id,
    )
    return int(status.split()[-1])


async def cancel_for_datasets(conn: Conn, webhook_id: uuid.UUID, dataset_ids: list[int]) -> None:
    await conn.execute(
        f"UPDATE webhook_deliveries SET status = 'cancelled', lease = NULL, locked_until = NULL "
        f"WHERE webhook_id = $1 AND dataset_id = ANY($2) AND status IN {OPEN}",
        webhook_id,
        dataset_ids,
    )


async def delete_webhook(conn: Conn, webhook_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM webhooks WHERE id = $1", webhook_id)


async def rotate_secret(
    conn: Conn, webhook_id: uuid.UUID, secret: str, overlap_seconds: int
) -> datetime | None:
    until: datetime | None = await conn.fetchval(
        """
        UPDATE webhooks SET
            previous_secret = CASE WHEN $3 > 0 THEN secret END,
            previous_secret_until = CASE WHEN $3 > 0 THEN now() + make_interval(secs => $3) END,
            secret = $2, updated_at = now()
        WHERE id = $1 RETURNING previous_secret_until
        """,
        webhook_id,
        secret,
        float(overlap_seconds),
    )
    return until


async def app_for_dispatch(conn: Executor, app_id: uuid.UUID) -> WebhookApp | None:
    row = await conn.fetchrow(
        "SELECT id, org_id, scopes FROM apps WHERE id = $1 AND disabled_at IS NULL", app_id
    )
    return None if row is None else WebhookApp.of(row)
