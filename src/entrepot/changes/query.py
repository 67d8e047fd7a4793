"""The feed's SQL: a page of changes as a (possibly narrowed) grantee sees it."""

from __future__ import annotations

from typing import Any

from entrepot.filters.conditions import Condition
from entrepot.filters.sql import Args, condition_sql
from entrepot.schema.record_schema import RecordSchema
from entrepot.store.sql import changes_table, literal


def build_feed_sql(
    dataset_id: int,
    after: int,
    limit: int,
    schema: RecordSchema,
    extra: tuple[Condition, ...],
    fields: frozenset[str] | None = None,
) -> tuple[str, list[Any]]:
    """Up to ``limit`` changes after ``after`` in seq order, each as a narrowed grantee sees it.

    A grantee limited by the row filter ``extra`` and to the visible ``fields``
    sees a change by whether the record was visible to it before and after:
    visible after is an upsert, visible only before is a delete (it never sees
    the data that took the record out), visible neither is nothing (``op`` and
    ``data`` NULL), and a change that leaves every visible field as it was is
    nothing too. Rows shown as nothing are still returned, so the reader knows
    how far the page reached without the hidden changes being rendered.
    """
    args = Args([int(dataset_id), int(after)])
    page = (
        "SELECT seq, op, record_id AS id, version, data, prev, prev_known, at "
        f"FROM {changes_table(dataset_id)} "
        f"WHERE dataset_id = $1 AND seq > $2 ORDER BY seq LIMIT {args.add(int(limit))}"
    )
    if not extra and fields is None:
        sql = f"SELECT seq, op, id, version, data::text AS data, at FROM ({page}) c ORDER BY seq"
        return sql, args.values

    def visible(column: str) -> str:
        if not extra:
            return "true"
        conditions = " AND ".join(condition_sql(c, schema, args, column) for c in extra)
        return f"coalesce(({conditions}), false)"

    after_visible = f"(c.op = 'upsert' AND {visible('c.data')})"
    # A change written before its previous state was recorded may have been visible before.
    before_visible = f"(NOT c.prev_known OR (c.prev IS NOT NULL AND {visible('c.prev')}))"
    same = "false"
    if fields is not None:
        same = " AND ".join(
            ["c.prev_known", "c.prev IS NOT NULL"]
            + [
                f"(c.data -> {literal(f)}) IS NOT DISTINCT FROM (c.prev -> {literal(f)})"
                for f in sorted(fields)
            ]
        )
    op_sql = (
        f"CASE WHEN {after_visible} AND {before_visible} AND {same} THEN NULL "
        f"WHEN {after_visible} THEN 'upsert' WHEN {before_visible} THEN 'delete' END"
    )
    sql = (
        f"SELECT seq, op, id, version, CASE WHEN op = 'upsert' THEN data::text END AS data, at "
        f"FROM (SELECT c.seq, {op_sql} AS op, c.id, c.version, c.data, c.at FROM ({page}) c) v "
        "ORDER BY seq"
    )
    return sql, args.values
