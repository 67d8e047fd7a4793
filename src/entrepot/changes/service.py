"""Reading the change feed: one page at a time, on a connection the caller holds.

Every read goes through the caller's :class:`~entrepot.access.narrowing.ReadView`:
a narrowed grantee sees a record's change only if the record was visible to
it before or after (a record leaving its rows is a delete), never one that
touched only hidden fields, and hidden fields never.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
import orjson

from entrepot.access.narrowing import ReadView, read_view
from entrepot.access.policy import require_dataset_scope
from entrepot.access.resolver import AccessResolver
from entrepot.auditing.log import record
from entrepot.auth.tickets import IssuedTicket, StreamTickets
from entrepot.changes import repository as repo
from entrepot.changes.incarnation import incarnation_of
from entrepot.changes.query import build_feed_sql
from entrepot.principal import Principal
from entrepot.problems import Gone, NotFound
from entrepot.store.types import Executor
from entrepot.store.work import UnitOfWork

_TS = orjson.OPT_UTC_Z


@dataclass(frozen=True)
class FeedPage:
    """Changes a reader may see, and how far the page reached (``last_seq``).

    ``last_seq`` can pass changes that are not in ``changes``: those a
    narrowed grant sees as nothing. A reader resumes after it all the same.
    """

    changes: list[bytes]
    last_seq: int
    incarnation: str
    seqs: list[int] = field(default_factory=list)
    scanned: int = 0  # changes the page read, shown or not

    def body(self) -> bytes:
        return b"".join(
            (
                b'{"changes":[',
                b",".join(self.changes),
                b'],"last_seq":',
                str(self.last_seq).encode(),
                b',"incarnation":',
                orjson.dumps(self.incarnation),
                b"}",
            )
        )


def render_change(row: asyncpg.Record, view: ReadView) -> bytes:
    data = row["data"]
    data_json = view.project_text(data).encode() if data is not None else b"null"
    return b"".join(
        (
            b'{"seq":',
            str(row["seq"]).encode(),
            b',"op":',
            orjson.dumps(row["op"]),
            b',"id":',
            orjson.dumps(row["id"]),
            b',"version":',
            str(row["version"]).encode(),
            b',"data":',
            data_json,
            b',"at":',
            orjson.dumps(row["at"], option=_TS),
            b"}",
        )
    )


class FeedService:
    """Reading the feed on a connection the caller holds (a request's, a worker's)."""

    def __init__(self, access: AccessResolver) -> None:
        self.access = access

    async def view(self, conn: Executor, principal: Principal, dataset: str) -> ReadView:
        access = await self.access.for_dataset(principal, dataset, conn)
        return read_view(require_dataset_scope(access, "changes:read"))

    async def read(
        self,
        conn: Executor,
        view: ReadView,
        after: int,
        limit: int,
        incarnation: str | None = None,
    ) -> FeedPage:
        """Up to ``limit`` numbered changes after ``after`` (fewer shown when narrowing
        hides some). Callers that want what has just committed number it first
        (:func:`entrepot.changes.repository.sequence`, in a statement of its own)."""
        meta = view.access.meta
        current = incarnation_of(meta.id)
        head = await repo.head(conn, meta.id)
        if head is None:
            raise NotFound(f"Dataset {meta.name!r} does not exist or is not visible to you.")
        _check_position(after, incarnation, current, head)
        sql, args = build_feed_sql(
            meta.id, after, limit, view.schema, view.row_conditions, view.fields
        )
        try:
            rows = await repo.read(conn, sql, args)
        except asyncpg.UndefinedTableError:  # deleted since the head was read: its log too
            raise NotFound(
                f"Dataset {meta.name!r} does not exist or is not visible to you."
            ) from None
        if rows and rows[0]["seq"] != after + 1:
            # Compaction may have committed between the two reads above: the
            # horizon it moved (atomically with its deletes) says so.
            head = await repo.head(conn, meta.id)
            if head is not None:
                _check_position(after, incarnation, current, head)
        shown = [row for row in rows if row["op"] is not None]
        return FeedPage(
            [render_change(row, view) for row in shown],
            rows[-1]["seq"] if rows else after,
            current,
            [row["seq"] for row in shown],
            len(rows),
        )


async def issue_ticket(
    work: UnitOfWork,
    feed: FeedService,
    tickets: StreamTickets,
    principal: Principal,
    dataset: str,
) -> IssuedTicket:
    """A stream ticket for whoever may read ``dataset``'s feed (the same decision as
    reading it: 404 if hidden, 403 without ``changes:read``), audited like every
    credential issued; bound to the dataset's current incarnation."""
    meta = (await feed.view(work.conn, principal, dataset)).access.meta
    issued = await tickets.issue(principal, meta.name, incarnation_of(meta.id), work.conn)
    await record(
        work.conn,
        principal,
        "changes.ticket_issued",
        f"dataset:{meta.name}",
        details={"credential": principal.credential, "expires_at": issued.expires_at},
        target_org_id=meta.org_id,
    )
    return issued


def _check_position(
    after: int, incarnation: str | None, current: str, head: asyncpg.Record
) -> None:
    """A position the feed cannot continue from is 410: the reader must resnapshot.

    Carrying on would silently diverge: the changes before the horizon are
    gone, a position past the head was never this feed's (the dataset was
    deleted and created again, or the position is made up), and positions of
    an earlier incarnation count a different log.
    """
    resnapshot = (
        "Re-read the dataset with GET .../export (its X-Entrepot-Seq and "
        "X-Entrepot-Incarnation headers say where to resume)."
    )
    where = {"min_seq": head["min_seq"], "last_seq": head["last_seq"], "incarnation": current}
    if incarnation is not None and incarnation != current:
        raise Gone(
            f"The position belongs to an earlier incarnation ({incarnation!r}) of this "
            f"dataset; it has been deleted and created again since. {resnapshot}",
            reason="incarnation",
            **where,
        )
    if after > head["last_seq"]:
        raise Gone(
            f"seq {after} is past the head of this feed (last_seq {head['last_seq']}): the "
            f"dataset was deleted and created again, or the position is wrong. {resnapshot}",
            reason="ahead",
            **where,
        )
    if after < head["min_seq"]:
        raise Gone(
            f"Changes up to seq {head['min_seq']} have been compacted away. {resnapshot}",
            reason="compacted",
            **where,
        )
