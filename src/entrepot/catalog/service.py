"""Catalog use cases: the lifecycle of a dataset."""

from __future__ import annotations

from typing import Any

import asyncpg

from entrepot import jsonbody
from entrepot.access.policy import require_dataset_scope
from entrepot.access.resolver import AccessResolver, readable_visibilities
from entrepot.auditing.log import record
from entrepot.catalog import online_change
from entrepot.catalog import repository as repo
from entrepot.catalog.models import Contact, DatasetCreate, DatasetPatch
from entrepot.changes import repository as changes_repo
from entrepot.datasets.registry import DatasetRegistry
from entrepot.filters.conditions import row_filter_conditions
from entrepot.orgs import repository as orgs_repo
from entrepot.pagination import decode_cursor, fingerprint, page
from entrepot.principal import (
    Principal,
    can_manage_org,
    can_see_org,
    require_org_admin,
    require_scope,
)
from entrepot.problems import BadRequest, Conflict, NotFound, Unprocessable, refuse_nulls
from entrepot.schema.record_schema import RecordSchema
from entrepot.store.types import Conn
from entrepot.store.work import Reads, UnitOfWork

MAX_SCHEMA_CHANGE_ERRORS = 20


def dataset_out(row: repo.DatasetRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "org": row.org,
        "title": row.title,
        "description": row.description,
        "schema": jsonbody.loads_trusted(row.schema),
        "schema_version": row.schema_version,
        "primary_key": row.primary_key,
        "visibility": row.visibility,
        "indexes": list(row.indexes),
        "tags": list(row.tags),
        "require_if_match": row.require_if_match,
        "auto_approve": row.auto_approve,
        "license": row.license,
        "license_url": row.license_url,
        "contact": None if row.contact is None else jsonbody.loads_trusted(row.contact),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


async def _org_id_for(conn: Conn, principal: Principal, org: str) -> Any:
    row = await orgs_repo.get_org(conn, org)
    if row is None or not can_see_org(principal, row.id):
        raise Unprocessable(
            f"Organisation {org!r} does not exist or is not yours.",
            errors=[{"path": "/org", "message": "unknown organisation"}],
            denial=True,
        )
    require_org_admin(principal, row.id)
    return row.id


def _check_dataset_shape(schema: RecordSchema, primary_key: str | None, indexes: list[str]) -> None:
    if primary_key is not None:
        schema.check_key_field(primary_key)
    schema.check_indexable(indexes)


async def create_dataset(
    work: UnitOfWork, principal: Principal, body: DatasetCreate
) -> dict[str, Any]:
    schema = RecordSchema.compile(body.schema_).keyed_by(body.primary_key)
    indexes = list(dict.fromkeys(body.indexes))
    _check_dataset_shape(schema, body.primary_key, indexes)
    conn = work.conn
    org_id = await _org_id_for(conn, principal, body.org)
    try:
        dataset_id = await repo.insert_dataset(
            conn,
            {
                "name": body.name,
                "org_id": org_id,
                "title": body.title,
                "description": body.description,
                "schema": jsonbody.dumps(body.schema_),
                "primary_key": body.primary_key,
                "visibility": body.visibility,
                "indexes": indexes,
                "tags": list(dict.fromkeys(body.tags)),
                "require_if_match": body.require_if_match,
                "auto_approve": body.auto_approve,
                "license": body.license,
                "license_url": body.license_url,
                "contact": _contact_json(body.contact),
            },
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"A dataset named {body.name!r} already exists.") from None
    if schema.integer_ids:
        await repo.create_id_index(conn, dataset_id)
    for field in indexes:
        await repo.create_field_index(conn, dataset_id, field, schema.integer_ids)
    await changes_repo.create_head(conn, dataset_id)
    await record(
        conn,
        principal,
        "dataset.created",
        f"dataset:{body.name}",
        org_id=org_id,
        details={
            "visibility": body.visibility,
            "primary_key": body.primary_key,
            "indexes": indexes,
        },
    )
    row = await repo.get_dataset(conn, body.name)
    assert row is not None
    return dataset_out(row)


def _contact_json(contact: Contact | None) -> str | None:
    """The contact as stored: the parts given, in a fixed order (None: no contact)."""
    if contact is None:
        return None
    return jsonbody.dumps(contact.model_dump(include={"name", "email", "url"}))


CLEARABLE = ("license", "license_url", "contact")  # a patch's null removes these


def _as_seen(out: dict[str, Any], fields: list[str] | frozenset[str] | None) -> dict[str, Any]:
    """A dataset as a grantee narrowed to ``fields`` sees it: hidden properties vanish."""
    if fields is None:
        return out
    schema = RecordSchema.compile(out["schema"]).narrowed(frozenset(fields))
    out["schema"] = schema.document
    out["indexes"] = [f for f in out["indexes"] if f in fields]
    return out


async def get_dataset(
    reads: Reads, access: AccessResolver, principal: Principal, name: str
) -> dict[str, Any]:
    found = require_dataset_scope(
        await access.for_dataset(principal, name, reads.conn), "datasets:read"
    )
    row = await repo.get_dataset(reads.conn, name)
    if row is None:
        raise NotFound(f"Dataset {name!r} does not exist or is not visible to you.")
    return _as_seen(dataset_out(row), found.fields)


async def dataset_activity(
    reads: Reads, access: AccessResolver, principal: Principal, name: str
) -> repo.Activity | None:
    """A dataset's size and change rate, for a caller who reads all of it; None for a
    narrowed grantee (counting hidden rows would tell how many there are)."""
    found = require_dataset_scope(
        await access.for_dataset(principal, name, reads.conn), "datasets:read"
    )
    if found.narrowed:
        return None
    return await repo.activity(reads.conn, found.meta.id, found.meta.estimated_rows)


async def require_provider(
    reads: Reads, access: AccessResolver, principal: Principal, name: str
) -> None:
    """The caller administers the dataset's organisation (or the platform): who may
    read what every app asked of it. Others: 404 if they cannot see it, else 403."""
    await access.for_dataset(principal, name, reads.conn)
    row = await repo.get_dataset(reads.conn, name)
    if row is None:
        raise NotFound(f"Dataset {name!r} does not exist or is not visible to you.")
    require_org_admin(principal, row.org_id)


async def provides(reads: Reads, principal: Principal, name: str) -> bool:
    """Whether the caller administers the dataset's organisation: a question a page
    asks of a dataset it already showed, so a no is no denial."""
    row = await repo.get_dataset(reads.conn, name)
    return row is not None and can_manage_org(principal, row.org_id)


async def list_datasets(
    reads: Reads,
    principal: Principal,
    *,
    q: str | None,
    org: str | None,
    tag: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    require_scope(principal, "datasets:read")
    fp = fingerprint("datasets", q, org, tag)
    after = decode_cursor(cursor, fp)[0] if cursor else None
    rows = await repo.list_datasets(
        reads.conn,
        is_admin=principal.is_admin,
        viewer_orgs=principal.org_ids(),
        viewer_app=principal.app_id,
        readable=readable_visibilities(principal),
        q=q or None,
        org=org or None,
        tag=tag or None,
        after=after if isinstance(after, str) else None,
        limit=limit + 1,
    )
    items = [_as_seen(dataset_out(r.dataset), r.grant_fields) for r in rows]
    return page(items, limit, fp, lambda item: [item["name"]])


async def _check_live_grants(conn: Conn, dataset_id: int, schema: RecordSchema) -> None:
    """A schema change may not strand a live grant's fields or row filter."""
    failures: list[dict[str, str]] = []
    for grant in await repo.live_grant_narrowing(conn, dataset_id):
        missing = [f for f in grant.fields or () if not schema.has_property(f)]
        if missing:
            failures.append(
                {
                    "path": f"/grants/{grant.id}/fields",
                    "message": f"no longer in the schema: {missing}",
                }
            )
        if grant.row_filter is not None:
            try:
                row_filter_conditions(jsonbody.loads_trusted(grant.row_filter), schema)
            except BadRequest:
                failures.append(
                    {
                        "path": f"/grants/{grant.id}/row_filter",
                        "message": "names a field no longer in the schema",
                    }
                )
    if failures:
        raise Conflict(
            "The new schema would break live grants; revoke or re-approve them first.",
            errors=failures[:MAX_SCHEMA_CHANGE_ERRORS],
        )


async def update_dataset(
    reads: Reads,
    access: AccessResolver,
    principal: Principal,
    name: str,
    patch: DatasetPatch,
) -> dict[str, Any]:
    """Apply a dataset change; writers wait only for its last, short transaction.

    The slow parts run first on the request's connection, outside any
    transaction and without locks: new indexes are built concurrently and a
    new schema is checked against the stored records
    (:mod:`entrepot.catalog.online_change`); a transaction on the same
    connection then checks what was written meanwhile and commits. Dropped
    indexes go after the commit.
    """
    conn = reads.conn
    await access.for_dataset(principal, name, conn)
    registry = access.registry
    given = patch.model_dump(exclude_unset=True, by_alias=True)
    row = await repo.get_dataset(conn, name)
    if row is None:
        raise NotFound(f"Dataset {name!r} does not exist or is not visible to you.")
    require_org_admin(principal, row.org_id)
    if "primary_key" in given and given["primary_key"] != row.primary_key:
        raise Conflict("primary_key cannot change after creation: record ids derive from it.")
    given.pop("primary_key", None)
    refuse_nulls(given, ("title", "visibility", "require_if_match", "auto_approve"))
    given_schema = given.get("schema")
    schema_doc = given_schema if given_schema is not None else jsonbody.loads_trusted(row.schema)
    schema = RecordSchema.compile(schema_doc).keyed_by(row.primary_key)
    if given_schema is not None and row.primary_key is not None:
        before = RecordSchema.compile(jsonbody.loads_trusted(row.schema))
        schema.check_same_key_type(before, row.primary_key)
    old_indexes = list(row.indexes)
    given_indexes = given.get("indexes")
    new_indexes = list(dict.fromkeys(old_indexes if given_indexes is None else given_indexes))
    _check_dataset_shape(schema, row.primary_key, new_indexes)
    changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None or k in CLEARABLE}
    if "contact" in changes:
        changes["contact"] = _contact_json(patch.contact)
    # The same schema with its keys in another order admits the same records, but is
    # still a change: CSV columns and records' keys follow the declared order.
    same_meaning = False
    if "schema" in changes:
        stored = jsonbody.loads_trusted(row.schema)
        same_meaning = jsonbody.canonical(changes["schema"]) == jsonbody.canonical(stored)
        if same_meaning and jsonbody.dumps(changes["schema"]) == jsonbody.dumps(stored):
            del changes["schema"]
    added: list[str] = []
    removed: list[str] = []
    if "indexes" in changes:
        changes["indexes"] = new_indexes
        added = [f for f in new_indexes if f not in old_indexes]
        removed = [f for f in old_indexes if f not in new_indexes]
    if "tags" in changes:
        changes["tags"] = list(dict.fromkeys(changes["tags"]))

    checked_through = 0
    if "schema" in changes:
        if not same_meaning:
            checked_through = await online_change.validate_stored(conn, row.id, schema)
        changes["schema"] = jsonbody.dumps(changes["schema"])
    built: list[str] = []
    try:
        for field in added:
            await online_change.build_index(conn, row.id, field, schema.integer_ids)
            built.append(field)
        async with reads.begin() as work:
            # Writers wait from here: the records first, then the dataset row.
            await _hold(conn, row.id, name, "SHARE")
            locked = await repo.get_dataset(conn, name, for_update=True)
            if locked is None or locked.id != row.id:
                raise NotFound(f"Dataset {name!r} does not exist or is not visible to you.")
            if locked.schema_version != row.schema_version or list(locked.indexes) != old_indexes:
                raise Conflict(
                    f"{name!r} was changed by someone else meanwhile; read it and try again."
                )
            if "schema" in changes and not same_meaning:
                await online_change.validate_changed(conn, row.id, schema, checked_through)
                await _check_live_grants(conn, row.id, schema)
            if changes:
                await repo.update_dataset(conn, row.id, changes)
            await record(
                conn,
                principal,
                "dataset.updated",
                f"dataset:{name}",
                org_id=row.org_id,
                details=_changed(changes),
            )
            updated = await repo.get_dataset(conn, name)
            work.announce(DatasetRegistry.topic(name))
            work.after_commit(lambda: registry.forget(name))
    except BaseException:
        for field in built:  # the change did not happen: neither does its index
            await online_change.drop_index(conn, row.id, field)
        raise
    for field in removed:
        await online_change.drop_index(conn, row.id, field)
    assert updated is not None
    return dataset_out(updated)


async def _hold(conn: Conn, dataset_id: int, name: str, mode: str) -> None:
    try:
        await repo.hold_records(conn, dataset_id, mode)
    except asyncpg.UndefinedTableError:  # deleted meanwhile
        raise NotFound(f"Dataset {name!r} does not exist or is not visible to you.") from None


def _changed(changes: dict[str, Any]) -> dict[str, Any]:
    """What a dataset update changed, for the audit row: bulky values only by name."""
    bulky = ("schema", "description")
    return {
        "changed": sorted(changes),
        "values": {k: v for k, v in changes.items() if k not in bulky},
    }


async def delete_dataset(
    work: UnitOfWork, access: AccessResolver, principal: Principal, name: str
) -> None:
    conn = work.conn
    await access.for_dataset(principal, name, conn)
    registry = access.registry
    row = await repo.get_dataset(conn, name)
    if row is None:
        raise NotFound(f"Dataset {name!r} does not exist or is not visible to you.")
    require_org_admin(principal, row.org_id)
    await _hold(conn, row.id, name, "ACCESS EXCLUSIVE")
    locked = await repo.get_dataset(conn, name, for_update=True)
    if locked is None or locked.id != row.id:
        raise NotFound(f"Dataset {name!r} does not exist or is not visible to you.")
    await repo.delete_dataset(conn, row.id)
    await record(conn, principal, "dataset.deleted", f"dataset:{name}", org_id=row.org_id)
    work.announce(DatasetRegistry.topic(name))
    work.after_commit(lambda: registry.forget(name))
