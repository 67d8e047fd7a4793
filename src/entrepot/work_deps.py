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

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Annotated

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


async def _work(request: Request) -> AsyncIterator[UnitOfWork]:
    async with unit_of_work(components(request).get(asyncpg.Pool)) as work:
        yield work


async def _reads(request: Request) -> AsyncIterator[Reads]:
    async with reads(components(request).get(asyncpg.Pool)) as reading:
        yield reading


def planned_reading(parts: Components) -> AbstractAsyncContextManager[Reads]:
    """A connection of the planned pool; of the request pool when there is none
    (``ENTREPOT_PLANNED_POOL_SIZE=0``, a transaction pooler)."""
    planned = parts.find(PlannedPool)
    return reads(parts.get(asyncpg.Pool)) if planned is None else planned_reads(planned.pool)


async def _planned_reads(request: Request) -> AsyncIterator[Reads]:
    async with planned_reading(components(request)) as reading:
        yield reading


async def _lazy_work(request: Request) -> AsyncIterator[UnitOfWork]:
    async with lazy_unit_of_work(components(request).get(asyncpg.Pool)) as work:
        yield work


Work = Annotated[UnitOfWork, Depends(_work, scope="function")]
# A unit whose transaction begins when the use case asks (``work.begin_transaction()``):
# for routes whose common path is one statement (record writes).
LazyWork = Annotated[UnitOfWork, Depends(_lazy_work, scope="function")]
Reading = Annotated[Reads, Depends(_reads, scope="function")]
PlannedReading = Annotated[Reads, Depends(_planned_reads, scope="function")]


def _units(request: Request) -> Units:
    return Units(components(request).get(asyncpg.Pool))


OnDemand = Annotated[Units, Depends(_units)]
