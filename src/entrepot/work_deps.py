"""The request edge's units of work, as dependencies an endpoint names in its signature.

``Work`` (a transaction) for routes that change something, ``LazyWork`` (the
same, its transaction begun when the use case asks: record writes, whose common
path is one statement), ``Reading`` (a connection, no transaction) for routes that
only read, ``PlannedReading`` (the same on the planned pool: routes whose statements'
best plans depend on their values, record lists), ``OnDemand`` for the rare use case
that must hold no connection through a slow step. The units end before the
answer is sent (``scope="function"``): a 2xx means committed, and a commit
that fails is answered as the problem it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, TypeVar

import asyncpg
from fastapi import Depends, Request

from entrepot.components import Components
from entrepot.parts import components
from entrepot.store.pool import PlannedPool
from entrepot.store.work import (
    Reads,
    UnitOfWork,
    Units,
    lazy_unit_of_work,
    planned_reads,
    reads,
    unit_of_work,
)

U = TypeVar("U", bound=Reads)


def open_work(parts: Components) -> AbstractAsyncContextManager[UnitOfWork]:
    return unit_of_work(parts.get(asyncpg.Pool))


def open_lazy_work(parts: Components) -> AbstractAsyncContextManager[UnitOfWork]:
    return lazy_unit_of_work(parts.get(asyncpg.Pool))


def open_reads(parts: Components) -> AbstractAsyncContextManager[Reads]:
    return reads(parts.get(asyncpg.Pool))


def open_planned_reads(parts: Components) -> AbstractAsyncContextManager[Reads]:
    """A connection of the planned pool; of the request pool when there is none
    (``ENTREPOT_PLANNED_POOL_SIZE=0``, a transaction pooler)."""
    planned = parts.find(PlannedPool)
    return open_reads(parts) if planned is None else planned_reads(planned.pool)


def _dependency(
    opener: Callable[[Components], AbstractAsyncContextManager[U]],
) -> Callable[[Request], AsyncIterator[U]]:
    """The FastAPI dependency that holds ``opener``'s unit for the request."""

    async def unit(request: Request) -> AsyncIterator[U]:
        async with opener(components(request)) as opened:
            yield opened

    return unit


Work = Annotated[UnitOfWork, Depends(_dependency(open_work), scope="function")]
# A unit whose transaction begins when the use case asks (``work.begin_transaction()``):
# for routes whose common path is one statement (record writes).
LazyWork = Annotated[UnitOfWork, Depends(_dependency(open_lazy_work), scope="function")]
Reading = Annotated[Reads, Depends(_dependency(open_reads), scope="function")]
PlannedReading = Annotated[Reads, Depends(_dependency(open_planned_reads), scope="function")]

# Each unit's opener, by the hint an endpoint names it with: the direct routes
# (direct_routes.py) open the same units without the dependency solver.
Opener = Callable[[Components], AbstractAsyncContextManager[Reads]]
OPENERS: dict[object, Opener] = {
    Reading: open_reads,
    PlannedReading: open_planned_reads,
    Work: open_work,
    LazyWork: open_lazy_work,
}


def _units(request: Request) -> Units:
    return Units(components(request).get(asyncpg.Pool))


OnDemand = Annotated[Units, Depends(_units)]
