"""The audit log's NDJSON export: a snapshot streamed from a bulk connection.

A runner, not a service: it opens the snapshot's transaction itself, on a
bulk connection counted against the caller's share, after the organisation
lookup has given its short unit back (the request pool is never held while
a bulk connection is awaited).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator

from entrepot.audit import repository as repo
from entrepot.audit.models import AuditFilter
from entrepot.audit.service import entry_out, normalised, visible_orgs
from entrepot.ops.metrics import BULK_ROWS
from entrepot.principal import Principal
from entrepot.store.bulk_slots import BulkSlots
from entrepot.store.work import Units, plan_for_values
from entrepot.streaming import bulk_job, prepend

FETCH_ROWS = 1_000
_EXPORTED = BULK_ROWS.labels("audit_export", "exported")


async def export(
    units: Units, slots: BulkSlots, principal: Principal, filters: AuditFilter
) -> AsyncIterator[bytes]:
    """NDJSON lines identical to the list's entries; access is decided before any byte."""
    filters = normalised(filters)
    async with units.reads() as reads:
        orgs = await visible_orgs(reads, principal, filters.org)
    chunks = _stream(slots, principal.share_key, filters, orgs)
    first = await anext(chunks)  # opens the snapshot and the cursor
    return prepend(first, chunks)


async def _stream(
    slots: BulkSlots, caller: str | None, filters: AuditFilter, orgs: list[uuid.UUID] | None
) -> AsyncGenerator[bytes, None]:
    async with (
        slots.connection(caller) as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
        bulk_job("audit_export"),
    ):
        await plan_for_values(conn)
        batches = repo.export_batches(conn, filters, orgs=orgs, size=FETCH_ROWS)
        rows = await anext(batches, None)  # the cursor is open, its first rows read
        yield b""
        while rows is not None:
            _EXPORTED.inc(len(rows))
            yield b"".join(entry_out(row, orgs).model_dump_json().encode() + b"\n" for row in rows)
            rows = await anext(batches, None)
