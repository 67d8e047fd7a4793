"""How access requests and grants look, and the checks their inputs must pass.

Pure functions shared by the access service's use cases: rendering rows for
each viewer, validating narrowing (fields, row filters, expiry) and paging.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from entrepot import jsonbody
from entrepot.filters.conditions import row_filter_conditions
from entrepot.pagination import decode_cursor, encode_cursor, invalid_cursor
from entrepot.principal import Principal, can_manage_org
from entrepot.problems import BadRequest, Unprocessable
from entrepot.schema.record_schema import RecordSchema
from entrepot.uuids import parse_uuid


def request_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "dataset": row["dataset"],
        "app": str(row["app_id"]),
        "app_name": row["app_name"],
        "app_org": row["app_org"],
        "scopes": list(row["scopes"]),
        "reason": row["reason"],
        "status": row["status"],
        "note": row["note"],
        "requested_by": row["requested_by"],
        "created_at": row["created_at"],
        "decided_at": row["decided_at"],
        "decided_by": row["decided_by"],
        "grant_id": str(row["grant_id"]) if row["grant_id"] is not None else None,
    }


def grant_out(row: asyncpg.Record, viewer: Principal | None = None) -> dict[str, Any]:
    """A grant as ``viewer`` sees it (``None``: as its dataset's owners see it).

    The grantee's side never learns the names of fields its grant hides, so
    conditions of the row filter on hidden fields are left out for it.
    """
    fields = list(row["fields"]) if row["fields"] is not None else None
    row_filter = jsonbody.loads_trusted(row["row_filter"]) if row["row_filter"] else None
    owner_view = viewer is None or can_manage_org(viewer, row["dataset_org_id"])
    if row_filter is not None and fields is not None and not owner_view:
        row_filter = {k: v for k, v in row_filter.items() if k in fields}
    return {
        "id": str(row["id"]),
        "dataset": row["dataset"],
        "app": str(row["app_id"]),
        "scopes": list(row["scopes"]),
        "fields": fields,
        "row_filter": row_filter,
        "expires_at": row["expires_at"],
        "revoked_at": row["revoked_at"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "status": row["status"],
    }


def invalid(detail: str, path: str, message: str) -> Unprocessable:
    return Unprocessable(detail, errors=[{"path": path, "message": message}])


def managed_orgs(principal: Principal) -> list[uuid.UUID] | None:
    """The organisations the caller administers; None means every one (platform admin)."""
    if principal.is_admin:
        return None
    return [o for o in principal.org_ids() if can_manage_org(principal, o)]


def may_see(principal: Principal, row: asyncpg.Record) -> bool:
    return (
        principal.app_id == row["app_id"]
        or can_manage_org(principal, row["app_org_id"])
        or can_manage_org(principal, row["dataset_org_id"])
    )


def future_moment(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise invalid("expires_at must be in the future.", "/expires_at", "in the past")
    return moment


def page_position(cursor: str | None, fp: str) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    position = decode_cursor(cursor, fp)
    invalid = invalid_cursor()
    if len(position) != 2 or not all(isinstance(p, str) for p in position):
        raise invalid
    try:
        return datetime.fromisoformat(position[0]), uuid.UUID(position[1])
    except ValueError:
        raise invalid from None


def page_of_rows(rows: list[asyncpg.Record], limit: int, fp: str, out: Any) -> dict[str, Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = None
    if more and rows:
        last = rows[-1]
        cursor = encode_cursor([last["created_at"].isoformat(), str(last["id"])], fp)
    return {"data": [out(r) for r in rows], "next_cursor": cursor}


def filter_app(raw: str | None) -> uuid.UUID | None:
    if raw is None or raw == "":
        return None
    app_id = parse_uuid(raw)
    if app_id is None:
        raise BadRequest(
            "app must be an application id.",
            errors=[{"path": "query:app", "message": "not an application id"}],
        )
    return app_id


def check_fields(fields: list[str], schema: RecordSchema, primary_key: str | None) -> list[str]:
    errors = [
        {"path": f"/fields/{i}", "message": f"{name!r} is not a top-level schema property"}
        for i, name in enumerate(fields)
        if not schema.has_property(name)
    ]
    if errors:
        raise Unprocessable("fields must name top-level schema properties.", errors=errors)
    if primary_key is not None and primary_key not in fields:
        # Record ids are the primary key's values: hiding it would hide nothing.
        raise invalid(
            f"fields must include the primary key {primary_key!r}: record ids reveal it.",
            "/fields",
            "the primary key cannot be hidden",
        )
    return list(dict.fromkeys(fields))


def check_row_filter(row_filter: dict[str, Any], schema: RecordSchema) -> None:
    try:
        row_filter_conditions(row_filter, schema)
    except BadRequest as exc:
        raise Unprocessable(exc.detail, errors=exc.errors) from None
