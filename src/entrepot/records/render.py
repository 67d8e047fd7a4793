"""Record envelopes rendered straight to bytes.

PostgreSQL hands back ``data::text``; splicing it into the envelope avoids
parsing and re-serialising every record on the read path.
"""

from __future__ import annotations

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


def page(items: list[bytes], next_cursor: str | None) -> bytes:
    return b"".join(
        (b'{"data":[', b",".join(items), b'],"next_cursor":', orjson.dumps(next_cursor), b"}")
    )
