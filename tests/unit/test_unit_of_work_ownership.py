"""The request edge owns the unit of work: services and repositories never open one.

A service receives a ``Reads``/``UnitOfWork`` (or ``Units`` for a use case that must
hold no connection while it is slow) and works through it; it never acquires a
connection, starts, commits or rolls back a transaction. Repositories run
statements on the connection they are given. This scans their source, so a new
module that breaks the rule fails here, not in review.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "entrepot"
# Every repository module: ``repository.py`` and the split ones (``queue_repository.py``...).
MODULES = sorted(
    [*SRC.glob("*/service.py"), *SRC.glob("*/repository.py"), *SRC.glob("*/*_repository.py")]
)
# Calls that take a connection or own a transaction.
FORBIDDEN_METHODS = {"acquire", "transaction", "commit", "rollback", "start"}
# store.work's openers, which only the edge (work_deps, direct routes, jobs) may use.
FORBIDDEN_OPENERS = {"unit_of_work", "within", "reads"}


def _violations(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "entrepot.store.work":
            for alias in node.names:
                if alias.name in FORBIDDEN_OPENERS:
                    found.append(f"line {node.lineno}: imports store.work.{alias.name}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FORBIDDEN_METHODS
        ):
            found.append(f"line {node.lineno}: calls .{node.func.attr}()")
    return found


def test_there_are_services_and_repositories_to_check() -> None:
    names = {p.parent.name for p in MODULES}
    assert {"records", "catalog", "access", "apps", "changes", "webhooks"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_service_or_repository_opens_a_connection_or_a_transaction(
    path: pathlib.Path,
) -> None:
    assert _violations(path) == []


def test_the_scan_sees_a_violation(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "service.py"
    bad.write_text(
        "from entrepot.store.work import unit_of_work\n"
        "async def f(pool):\n"
        "    async with pool.acquire() as conn, conn.transaction():\n"
        "        pass\n"
    )
    assert _violations(bad) == [
        "line 1: imports store.work.unit_of_work",
        "line 3: calls .acquire()",
        "line 3: calls .transaction()",
    ]
