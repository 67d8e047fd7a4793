"""The connection budget's arithmetic, the start-up check's verdict, and a census of every
place the code opens a PostgreSQL connection (a new one must be counted)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from entrepot.settings import Settings
from entrepot.store.budget import START_UP_PEAK, WORKER_DEDICATED, Budget, describe
from entrepot.store.capacity import Room, refusal

SRC = Path(__file__).resolve().parents[2] / "src" / "entrepot"
URL = "postgresql://app@db:5432/entrepot"


def test_a_worker_counts_its_pools_and_its_three_listeners() -> None:
    budget = Budget.of(Settings(database_url=URL))
    assert (budget.request_pool, budget.bulk_pool, budget.dedicated) == (10, 4, 3)
    assert budget.per_worker == 17
    assert budget.per_replica == budget.direct_per_replica == 17
    assert budget.through_pooler_per_replica == 0


def test_the_issue_s_example_three_replicas_of_two_workers() -> None:
    budget = Budget.of(Settings(database_url=URL, workers=2))
    assert budget.per_replica == 34
    assert describe(budget, replicas=3)[-1] == "3 replicas: 102"  # over PostgreSQL's 100


def test_the_cli_s_workers_win_over_the_setting() -> None:
    assert Budget.of(Settings(database_url=URL, workers=4), workers=2).workers == 2


def test_through_a_pooler_only_the_listeners_reach_the_server() -> None:
    settings = Settings(
        database_url="postgresql://app@bouncer:6432/entrepot",
        direct_database_url=URL,
        pooler="transaction",
        workers=2,
        pool_max_size=20,
        bulk_pool_size=2,
    )
    budget = Budget.of(settings)
    assert budget.direct_per_replica == 2 * 3
    assert budget.through_pooler_per_replica == 2 * 22
    lines = describe(budget, replicas=3)
    assert lines[1].endswith(
        "6 to PostgreSQL itself (ENTREPOT_DIRECT_DATABASE_URL), 44 to the "
        "pooler (ENTREPOT_DATABASE_URL)"
    )
    assert lines[2] == "3 replicas: 18 to PostgreSQL itself, 132 to the pooler"


def test_start_up_connections_never_add_to_the_budget() -> None:
    """serve closes them before its first worker starts, which holds more."""
    assert len(WORKER_DEDICATED) >= START_UP_PEAK


def test_a_transaction_pooler_needs_the_direct_url() -> None:
    with pytest.raises(ValidationError, match="ENTREPOT_DIRECT_DATABASE_URL"):
        Settings(database_url=URL, pooler="transaction")
    with pytest.raises(ValidationError, match="needs ENTREPOT_DATABASE_URL"):
        Settings(direct_database_url=URL)
    assert Settings(database_url=URL).direct_url() == URL


def room(**given: object) -> Room:
    values: dict[str, object] = {
        "max_connections": 100,
        "reserved": 3,
        "superuser": False,
        "role": "app",
        "role_limit": -1,
        "database": "entrepot",
        "database_limit": -1,
        "in_use": 20,
        "role_in_use": 5,
        "database_in_use": 7,
    }
    values.update(given)
    return Room(**values)  # type: ignore[arg-type]


def test_the_server_s_free_slots_leave_the_reserved_ones_out() -> None:
    limit = room().tightest()
    assert (limit.what, limit.allowed, limit.free) == ("the server", 97, 77)
    assert refusal(Budget(1, 10, 4), room(in_use=80), "db:5432") is None  # 17 of 17 free
    assert refusal(Budget(1, 10, 4), room(in_use=81), "db:5432") is not None


def test_the_role_s_and_database_s_limits_count_unless_superuser() -> None:
    tight = room(role_limit=10, database_limit=30)
    assert tight.tightest().what == 'role "app"'
    assert tight.tightest().free == 5
    assert room(role_limit=10, database_limit=8).tightest().what == 'database "entrepot"'
    superuser = room(role_limit=10, database_limit=8, superuser=True).tightest()
    assert (superuser.what, superuser.allowed, superuser.free) == ("the server", 100, 80)


def test_the_refusal_is_one_line_naming_the_budget_the_room_and_the_settings() -> None:
    line = refusal(Budget(2, 10, 4), room(role_limit=20, role_in_use=2), "db:5432")
    assert line is not None
    assert "\n" not in line
    assert "may open 34 connections to PostgreSQL at db:5432" in line
    assert "2 workers x (10 request pool + 4 bulk pool + 3 listeners)" in line
    assert 'role "app" has 18 free (20 allowed: CONNECTION LIMIT; 2 in use)' in line
    for setting in ("ENTREPOT_POOL_MAX_SIZE", "ENTREPOT_BULK_POOL_SIZE", "ENTREPOT_WORKERS"):
        assert setting in line
    assert "ENTREPOT_CONNECTION_CHECK=false" in line


def test_through_a_pooler_the_refusal_counts_the_listeners_only() -> None:
    pooled = Budget(4, 50, 10, pooler="transaction")
    assert refusal(pooled, room(in_use=85), "db:5432") is None  # 12 of 12 free
    line = refusal(pooled, room(in_use=86), "db:5432")
    assert line is not None
    assert "may open 12 connections" in line
    assert "4 workers x 3 listeners; the pools go through the pooler" in line


# Every call that opens a connection or a pool, by module and callee, and how the budget
# counts it. A new one fails test_every_connection_the_code_opens_is_counted: count it in
# store/budget.py (WORKER_DEDICATED, or START_UP_PEAK for serve's own), then list it here.
OPENERS = {
    ("app.py", "create_pool"): "the request, planned and bulk pools (pool_max_size, "
    "of which planned_share, and bulk_pool_size)",
    ("store/pool.py", "MeteredPool"): "what create_pool builds",
    ("store/listen.py", "asyncpg.connect"): "each LISTEN loop's connection (WORKER_DEDICATED)",
    ("changes/waiter.py", "listen_forever"): "WORKER_DEDICATED changes",
    ("store/notify.py", "listen_forever"): "WORKER_DEDICATED invalidation",
    ("webhooks/worker.py", "listen.listen_forever"): "WORKER_DEDICATED webhooks",
    ("store/capacity.py", "asyncpg.connect"): "serve's start-up check, alone (START_UP_PEAK)",
    ("store/migrate.py", "asyncpg.connect"): "the migrations and their lock watch (START_UP_PEAK)",
    ("auth/bootstrap.py", "asyncpg.connect"): "serve's bootstrap, alone (START_UP_PEAK)",
    ("store/embedded.py", "asyncpg.connect"): "creating the embedded database, before the rest",
    ("auth/admin_keys.py", "asyncpg.connect"): "entrepot admin create-key, not serve",
    ("streams/admin.py", "asyncpg.connect"): "entrepot admin streams, not serve",
    ("sync/targets.py", "asyncpg.create_pool"): "the sync agent's own target database",
}
CALLEES = {
    "asyncpg.connect",
    "asyncpg.create_pool",
    "asyncpg.Pool",
    "create_pool",
    "MeteredPool",
    "listen_forever",
    "listen.listen_forever",
}


def _callee(node: ast.Call) -> str:
    return ast.unparse(node.func)


def _openers() -> dict[tuple[str, str], list[ast.Call]]:
    found: dict[tuple[str, str], list[ast.Call]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _callee(node) in CALLEES:
                where = (str(path.relative_to(SRC)), _callee(node))
                found.setdefault(where, []).append(node)
    return found


def test_every_connection_the_code_opens_is_counted() -> None:
    found = _openers()
    new = sorted(set(found) - set(OPENERS))
    assert not new, (
        f"connections opened at {new}: count them in store/budget.py, then list them "
        "in OPENERS here"
    )
    assert not set(OPENERS) - set(found), "OPENERS lists a call the code no longer makes"
    assert len(found[("app.py", "create_pool")]) == 3  # requests, planned, bulk: no more


def test_every_listen_loop_is_a_counted_dedicated_connection() -> None:
    names = set()
    for (_, callee), calls in _openers().items():
        if callee.endswith("listen_forever"):
            for call in calls:
                [name] = [k.value for k in call.keywords if k.arg == "name"]
                assert isinstance(name, ast.Constant)
                names.add(name.value)
    assert names == {d.name for d in WORKER_DEDICATED}
