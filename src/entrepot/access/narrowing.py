"""What a (possibly narrowed) grantee sees of a dataset: one view for every read path.

Get, list, export, and later the change feed and webhooks, all read through
a :class:`ReadView`, so a hidden field or row cannot leak by one route while
the others hide it. Hidden fields are not merely removed from output: they
are unknown to the query parser (filters, sorts and projections on them are
400 "unknown field", exactly like fields that do not exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from entrepot import jsonbody
from entrepot.access.resolver import DatasetAccess
from entrepot.filters.conditions import Condition, row_filter_conditions
from entrepot.schema.record_schema import RecordSchema


@dataclass(frozen=True)
class ReadView:
    access: DatasetAccess
    schema: RecordSchema
    row_conditions: tuple[Condition, ...]
    fields: frozenset[str] | None

    def project(self, data: dict[str, Any]) -> dict[str, Any]:
        if self.fields is None:
            return data
        return {k: v for k, v in data.items() if k in self.fields}

    def project_text(self, data_text: str, wanted: tuple[str, ...] | None = None) -> str:
        """Data text limited to the visible fields, in the schema's declared order, or
        limited to ``wanted`` (``fields=``) in the order asked for."""
        if self.fields is None and wanted is None:
            return self.schema.key_order.text(data_text)
        data = self.project(jsonbody.loads_trusted(data_text))
        if wanted is not None:
            data = {k: data[k] for k in wanted if k in data}
        else:
            data = self.schema.key_order.apply(data)
        return jsonbody.dumps(data)


def read_view(access: DatasetAccess) -> ReadView:
    full = access.meta.schema
    schema = full.narrowed(access.fields) if access.fields is not None else full
    conditions = row_filter_conditions(access.row_filter, full) if access.row_filter else ()
    return ReadView(access, schema, conditions, access.fields)
