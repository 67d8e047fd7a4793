"""Splitting migration files into statements (for files run outside a transaction)."""

from __future__ import annotations

import pytest

from entrepot.store.migrate import available_migrations
from entrepot.store.statements import StatementSplitError, split_statements


def test_semicolons_split_statements_outside_quotes_and_comments() -> None:
    sql = """
    -- a comment; not a statement
    CREATE TABLE t (a text DEFAULT 'x;y', "we;ird" int);  /* block; /* nested; */ still; */
    INSERT INTO t (a) VALUES (E'it\\'s; fine'), ('it''s; fine');
    CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$
    BEGIN RETURN 1; END;
    $body$;
    SELECT $$;$$, a$b FROM t
    """
    assert split_statements(sql) == [
        "-- a comment; not a statement\n    CREATE TABLE t (a text DEFAULT 'x;y', \"we;ird\" int)",
        "/* block; /* nested; */ still; */\n    "
        "INSERT INTO t (a) VALUES (E'it\\'s; fine'), ('it''s; fine')",
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\n"
        "    BEGIN RETURN 1; END;\n    $body$",
        "SELECT $$;$$, a$b FROM t",
    ]


def test_pieces_holding_only_comments_are_dropped() -> None:
    assert split_statements("-- entrepot:no-transaction\n;\n  ; -- done\n") == []


@pytest.mark.parametrize(
    "sql",
    ["SELECT 'open", 'SELECT "open', "SELECT $x$ open", "SELECT 1 /* open"],
)
def test_unterminated_quotes_are_refused(sql: str) -> None:
    with pytest.raises(StatementSplitError):
        split_statements(sql)


def test_sql_standard_bodies_are_refused() -> None:
    with pytest.raises(StatementSplitError, match="BEGIN ATOMIC"):
        split_statements("CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END")


def test_every_packaged_migration_splits() -> None:
    for migration in available_migrations():
        statements = split_statements(migration.sql)
        assert statements, migration.name
        assert all(not s.endswith(";") for s in statements)
