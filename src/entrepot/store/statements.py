"""Splitting a migration file into its statements, as PostgreSQL's lexer would.

A migration that runs outside a transaction must send its statements one by
one: PostgreSQL runs a multi-statement query string as one implicit
transaction, where ``CREATE INDEX CONCURRENTLY`` and its kind are refused.
Semicolons separate statements except inside string literals (``'...'``,
``E'...'`` with backslash escapes), quoted identifiers (``"..."``), dollar
quotes (``$tag$ ... $tag$``) and comments (``-- ...`` and nested ``/* */``).
SQL-standard function bodies (``BEGIN ATOMIC ... END``) hold bare semicolons:
they are refused here; write the body dollar-quoted instead.
"""

from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\uffff]")
_BEGIN_ATOMIC = re.compile(r"BEGIN\s+ATOMIC\b", re.IGNORECASE)


class StatementSplitError(ValueError):
    pass


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql`` in order, each stripped and without its closing
    semicolon; pieces holding only comments and blanks are dropped."""
    statements: list[str] = []
    start = 0
    code = False  # whether the current piece holds more than comments and blanks
    i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        after_ident = i > 0 and _IDENT_CHAR.match(sql[i - 1]) is not None
        if ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if ch == "/" and sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
            continue
        if ch == ";":
            if code:
                statements.append(sql[start:i].strip())
            i += 1
            start = i
            code = False
            continue
        if not ch.isspace():
            code = True
        if ch == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _IDENT_CHAR.match(sql[i - 2]))
            i = _skip_quoted(sql, i, "'", backslash=escapes)
        elif ch == '"':
            i = _skip_quoted(sql, i, '"', backslash=False)
        elif ch == "$" and not after_ident and (tag := _DOLLAR_TAG.match(sql, i)) is not None:
            close = sql.find(tag.group(0), tag.end())
            if close < 0:
                raise StatementSplitError(f"unterminated dollar quote {tag.group(0)}")
            i = close + len(tag.group(0))
        elif ch in "bB" and not after_ident and _BEGIN_ATOMIC.match(sql, i):
            raise StatementSplitError(
                "a BEGIN ATOMIC body cannot be split into statements: dollar-quote the body"
            )
        else:
            i += 1
    if code:
        statements.append(sql[start:].strip())
    return statements


def _skip_block_comment(sql: str, i: int) -> int:
    """The index just past the (possibly nested) comment opening at ``i``."""
    depth = 0
    n = len(sql)
    while i < n:
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise StatementSplitError("unterminated /* comment")


def _skip_quoted(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    """The index just past the literal or identifier opening at ``i``."""
    n = len(sql)
    i += 1
    while i < n:
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
        elif ch == quote:
            if i + 1 < n and sql[i + 1] == quote:  # a doubled quote stands for itself
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise StatementSplitError(f"unterminated {quote}")
