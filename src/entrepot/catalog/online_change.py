"""Changing a dataset's schema or indexes while its writers keep writing.

A new index is built with ``CREATE INDEX CONCURRENTLY`` before the change
commits; a dropped one goes with ``DROP INDEX CONCURRENTLY`` after it. A new
schema is checked against the stored records in batches, with no lock held:

1. number the pending changes and note the feed head S, then read every
   record in id order, a batch per statement, and validate it (a write
   committed before that is seen; one committed after it is pending or
   numbered above S);
2. revalidate the records the log says changed after S (numbered above it,
   or still pending), and again after that pass's head, until few are left;
3. the caller then locks the dataset row (writers wait from here) and
   revalidates the last few (:func:`validate_changed`) before it commits.

So writers are held only for the last, short step, whatever the dataset's
size; the feed's seqs (in commit order) are what makes the passes complete.
"""

from __future__ import annotations

import asyncio

import asyncpg

from entrepot import jsonbody
from entrepot.catalog import repository as repo
from entrepot.changes import repository as changes_repo
from entrepot.problems import Conflict, Unprocessable
from entrepot.schema.record_schema import RecordSchema
from entrepot.store.types import Conn, Executor

BATCH = 5_000
SETTLED = 1_000  # changed records few enough to revalidate under the lock
MAX_ERRORS = 20


def _stranded(failures: list[dict[str, str]]) -> Conflict:
    return Conflict(
        "The new schema would invalidate stored records; fix or delete them first.",
        errors=failures[:MAX_ERRORS],
    )


def _check(
    schema: RecordSchema, rows: list[tuple[str, str]], failures: list[dict[str, str]]
) -> None:
    for record_id, data in rows:
        where = "/records/" + record_id.replace("~", "~0")  # ids cannot hold "/"
        for err in schema.errors(jsonbody.loads_trusted(data)):
            failures.append({"path": where + err["path"], "message": err["message"]})


async def validate_stored(conn: Conn, dataset_id: int, schema: RecordSchema) -> int:
    """Check every stored record against ``schema`` without holding a lock; the feed
    seq the check is complete up to (409 with the first failures, if any)."""
    await changes_repo.sequence(conn, dataset_id)  # what committed before is under the head
    covered = await changes_repo.head_seq(conn, dataset_id)
    failures: list[dict[str, str]] = []
    after = ""
    while len(failures) < MAX_ERRORS:
        rows = await repo.record_batch(conn, dataset_id, after, BATCH)
        if not rows:
            break
        _check(schema, rows, failures)
        after = rows[-1][0]
        await asyncio.sleep(0)  # validation is CPU work: let requests in between batches
    if failures:
        raise _stranded(failures)
    while True:  # catch up with what was written meanwhile, until little is left
        await changes_repo.sequence(conn, dataset_id)
        head = await changes_repo.head_seq(conn, dataset_id)
        changed = await _changed_ids(conn, dataset_id, covered)
        await _validate_ids(conn, dataset_id, schema, changed)
        covered = head
        if len(changed) <= SETTLED:
            return covered


async def validate_changed(conn: Conn, dataset_id: int, schema: RecordSchema, since: int) -> None:
    """Check the records changed after feed seq ``since``; call with the dataset locked."""
    await _validate_ids(conn, dataset_id, schema, await _changed_ids(conn, dataset_id, since))


async def _changed_ids(conn: Executor, dataset_id: int, since: int) -> list[str]:
    head = await changes_repo.head(conn, dataset_id)
    if head is not None and head["min_seq"] > since:
        # Compacted past our position: the feed no longer says what changed.
        raise Conflict("The dataset's change log moved on during the check; retry the change.")
    return await changes_repo.changed_since(conn, dataset_id, since)


async def _validate_ids(
    conn: Executor, dataset_id: int, schema: RecordSchema, ids: list[str]
) -> None:
    failures: list[dict[str, str]] = []
    for start in range(0, len(ids), BATCH):
        rows = await repo.records_by_id(conn, dataset_id, ids[start : start + BATCH])
        _check(schema, rows, failures)
        if len(failures) >= MAX_ERRORS:
            break
    if failures:
        raise _stranded(failures)


async def build_index(conn: Conn, dataset_id: int, field: str, integer_ids: bool) -> None:
    """Build a field index without blocking writes (``conn`` in no transaction).

    A build that failed before (or a crash mid-build) leaves an invalid index
    that ``IF NOT EXISTS`` would mistake for a finished one: it is dropped first.
    """
    if await repo.field_index_valid(conn, dataset_id, field) is False:
        await repo.drop_field_index_concurrently(conn, dataset_id, field)
    try:
        await repo.create_field_index_concurrently(conn, dataset_id, field, integer_ids)
    except (asyncpg.ProgramLimitExceededError, asyncpg.DataError) as exc:
        await repo.drop_field_index_concurrently(conn, dataset_id, field)
        raise Unprocessable(
            f"An index on {field!r} cannot be built: {exc.args[0] if exc.args else exc}",
            errors=[{"path": "/indexes", "message": f"{field!r} cannot be indexed"}],
        ) from None


async def drop_index(conn: Conn, dataset_id: int, field: str) -> None:
    await repo.drop_field_index_concurrently(conn, dataset_id, field)
