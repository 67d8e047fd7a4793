"""Helpers for the few SQL fragments that must be literals, not parameters.

Field expressions are written into SQL text (never bound as parameters) so
the planner can match them against the per-dataset expression indexes.
"""

from __future__ import annotations

import hashlib


def literal(text: str) -> str:
    """A standard-conforming SQL string literal (``standard_conforming_strings`` is on)."""
    if "\x00" in text:
        raise ValueError("SQL literals cannot contain NUL")
    return "'" + text.replace("'", "''") + "'"


def records_table(dataset_id: int) -> str:
    return f"records_{int(dataset_id)}"


def changes_table(dataset_id: int) -> str:
    """The dataset's partition of the change log (made by a trigger on datasets: 0007)."""
    return f"changes_{int(dataset_id)}"


def field_expr(field: str, column: str = "data") -> str:
    """The jsonb value of a top-level record field, JSON null when absent.

    Absent fields become JSON ``null`` rather than SQL NULL so keyset
    pagination can compare rows with plain row comparisons. ``column`` names
    another jsonb document of the same shape (a change's previous state).
    """
    return f"COALESCE({column} -> {literal(field)}, 'null'::jsonb)"


def id_expr(integer_ids: bool) -> str:
    """The record id as lists and exports order it: as a number when the dataset's
    ids are integers (decimal text in the id column, where "10" < "9"), else as text.
    Written exactly as the partition's index on it (:func:`id_index_name`)."""
    return "(id::numeric)" if integer_ids else "id"


def id_index_name(dataset_id: int) -> str:
    """The index ordering an integer-keyed dataset's ids as numbers (migration 0010)."""
    return f"records_{int(dataset_id)}_id_numeric"


def field_index_name(dataset_id: int, field: str) -> str:
    digest = hashlib.sha1(field.encode(), usedforsecurity=False).hexdigest()[:12]
    return f"records_{int(dataset_id)}_f_{digest}"
