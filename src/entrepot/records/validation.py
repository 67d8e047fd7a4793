"""The checks every record write applies, whether one record or a bulk line.

Kept apart from the services so single writes and imports cannot drift:
both raise :class:`Unprocessable` with ``{path, message}`` errors from here.
"""

from __future__ import annotations

from typing import Any

from entrepot.datasets.registry import DatasetMeta
from entrepot.problems import Unprocessable
from entrepot.records.ids import check_id, id_problem, invalid_id
from entrepot.wording import shown


def key_pointer(meta: DatasetMeta) -> str:
    """JSON Pointer to the primary key field ("" when ids are generated)."""
    if meta.primary_key is None:
        return ""
    return "/" + meta.primary_key.replace("~", "~0").replace("/", "~1")


def validate(meta: DatasetMeta, data: dict[str, Any]) -> None:
    errors = meta.schema.errors(data)
    if errors:
        raise Unprocessable(
            f"The record does not match the schema of {meta.name!r}.", errors=errors
        )


def record_id(meta: DatasetMeta, data: dict[str, Any], path_id: str | None) -> str:
    """The id a record is stored under: its primary key field, else the path id."""
    if meta.primary_key is None:
        return check_id(path_id or "", "")
    if meta.primary_key not in data:
        # Named at the record, as the schema's own "is required" errors are.
        raise Unprocessable(
            "The record lacks its primary key field.",
            errors=[
                {"path": "", "message": f"{shown(meta.primary_key)} is required (the primary key)"}
            ],
        )
    value = data[meta.primary_key]
    kind = type(value)
    if kind is not str and (kind is bool or not isinstance(value, str | int)):
        raise Unprocessable(
            "The primary key must be a string or an integer.",
            errors=[{"path": key_pointer(meta), "message": "must be a string or integer"}],
        )
    found = value if kind is str else str(value)
    problem = id_problem(found)
    if problem:
        raise invalid_id(problem, key_pointer(meta))
    if path_id is not None and found != path_id:
        raise Unprocessable(
            "The record's primary key does not match the id in the URL.",
            errors=[{"path": key_pointer(meta), "message": f"expected {path_id!r}, got {found!r}"}],
        )
    return found
