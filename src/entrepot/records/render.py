"""Record envelopes rendered straight to bytes.

PostgreSQL hands back ``data::text``, which the services put in the schema's
declared key order (:mod:`entrepot.schema.key_order`); splicing that text into the
envelope avoids building and serialising the whole response as objects.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import orjson

_TS = orjson.OPT_UTC_Z


def envelope(
    record_id: str, version: int, data_text: str, created_at: datetime, updated_at: datetime
) -> bytes:
    return b"".join(
        (
            b'{"id":',
            orjson.dumps(record_id),
            b',"version":',
            str(version).encode(),
            b',"data":',
            data_text.encode(),
            b',"created_at":',
            orjson.dumps(created_at, option=_TS),
            b',"updated_at":',
            orjson.dumps(updated_at, option=_TS),
            b"}",
        )
    )


def etag(version: int) -> str:
    return f'"{version}"'


def view_etag(record_id: str, visible_data: str) -> str:
    """A weak validator of what a field-narrowed grant sees of a record.

    Derived from the visible data alone, so a change to hidden fields leaves it
    as it was; weak, because the envelope's version and times still move.
    """
    digest = hashlib.blake2b(
        record_id.encode() + b"\x00" + visible_data.encode(), digest_size=12
    ).hexdigest()
    return f'W/"v{digest}"'


def page(items: list[bytes], next_cursor: str | None) -> bytes:
    return b"".join(
        (b'{"data":[', b",".join(items), b'],"next_cursor":', orjson.dumps(next_cursor), b"}")
    )
