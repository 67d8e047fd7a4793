"""The baseline: a bare ASGI app (no framework) doing the same reads and writes
with raw asyncpg. It is the physical limit of uvicorn + asyncpg on this
machine, what Entrepot's hot paths are measured against.

Served by bench/run.py with the same uvicorn settings as ``entrepot serve``
(uvloop, httptools, same worker count). Configuration from the environment:
``BASELINE_DATABASE_URL``, ``BASELINE_DATASET_ID`` (the dataset whose
partition ``records_<id>`` it reads), ``BASELINE_WRITE_DATASET_ID`` (the one
it inserts into; default: the same) and ``BASELINE_POOL_SIZE`` (its pool's
connections; 10).

Routes (no authentication, no validation, no logging):
- ``GET /healthz``
- ``GET /records/<id>``: the single indexed read Entrepot's GET does.
- ``GET /list/price-lt?value=V&limit=L``: the SQL of ``filter[price][lt]=V``.
- ``GET /list/region-by-price?region=R&limit=L``: ``filter[region]=R&sort=price``.
- ``POST /records``: one INSERT of the JSON body (id taken from ``sku``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import asyncpg
import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DSN = os.environ.get("BASELINE_DATABASE_URL", "")
DATASET_ID = int(os.environ.get("BASELINE_DATASET_ID", "0"))
TABLE = f"records_{DATASET_ID}"
WRITE_DATASET_ID = int(os.environ.get("BASELINE_WRITE_DATASET_ID", str(DATASET_ID)))
WRITE_TABLE = f"records_{WRITE_DATASET_ID}"
POOL_SIZE = int(os.environ.get("BASELINE_POOL_SIZE", "10"))
COLUMNS = "id, version, data::text, created_at, updated_at"
PRICE = "COALESCE(data -> 'price', 'null'::jsonb)"
REGION = "COALESCE(data -> 'region', 'null'::jsonb)"

GET_SQL = (
    f"SELECT version, data::text, created_at, updated_at FROM {TABLE} "
    f"WHERE dataset_id = {DATASET_ID} AND id = $1"
)
# The same statements Entrepot's query builder writes for these filters, so
# the planner does the same work on both sides.
PRICE_LT_SQL = (
    f"SELECT {COLUMNS} FROM {TABLE} WHERE dataset_id = {DATASET_ID} "
    f"AND {PRICE} < $1::jsonb AND jsonb_typeof({PRICE}) = 'number' ORDER BY id LIMIT $2"
)
REGION_BY_PRICE_SQL = (
    f"SELECT {COLUMNS}, ({PRICE})::text FROM {TABLE} WHERE dataset_id = {DATASET_ID} "
    f"AND {REGION} = $1::jsonb ORDER BY {PRICE}, id LIMIT $2"
)
INSERT_SQL = (
    f"INSERT INTO {WRITE_TABLE} (dataset_id, id, version, data) "
    f"VALUES ({WRITE_DATASET_ID}, $1, 1, $2::jsonb) ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
)

JSON_HEADERS = [(b"content-type", b"application/json")]
_TS = orjson.OPT_UTC_Z


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


class State:
    pool: asyncpg.Pool | None = None


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


async def respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            State.pool = await asyncpg.create_pool(
                DSN, min_size=2, max_size=POOL_SIZE, reset=_no_reset
            )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if State.pool is not None:
                await State.pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def page(pool: asyncpg.Pool, sql: str, value: str, limit: int) -> bytes:
    rows = await pool.fetch(sql, value, limit + 1)
    items = [envelope(r[0], r[1], r[2], r[3], r[4]) for r in rows[:limit]]
    more = len(rows) > limit
    cursor = orjson.dumps(rows[limit - 1][0] if more else None)
    return b'{"data":[' + b",".join(items) + b'],"next_cursor":' + cursor + b"}"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    pool = State.pool
    assert pool is not None
    path: str = scope["path"]
    method: str = scope["method"]
    if method == "GET" and path.startswith("/records/"):
        record_id = unquote(path[9:])
        row = await pool.fetchrow(GET_SQL, record_id)
        if row is None:
            await respond(send, 404, b'{"title":"Not Found"}')
            return
        await respond(send, 200, envelope(record_id, row[0], row[1], row[2], row[3]))
    elif method == "GET" and path.startswith("/list/"):
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        limit = int(query.get("limit", "50"))
        if path == "/list/price-lt":
            body = await page(pool, PRICE_LT_SQL, query["value"], limit)
        else:
            body = await page(
                pool, REGION_BY_PRICE_SQL, orjson.dumps(query["region"]).decode(), limit
            )
        await respond(send, 200, body)
    elif method == "POST" and path == "/records":
        body = await read_body(receive)
        record_id = orjson.loads(body)["sku"]
        row = await pool.fetchrow(INSERT_SQL, record_id, body.decode())
        if row is None:
            await respond(send, 409, b'{"title":"Conflict"}')
            return
        await respond(send, 201, envelope(row[0], row[1], row[2], row[3], row[4]))
    elif path == "/healthz":
        await respond(send, 200, b'{"status":"ok"}')
    else:
        await respond(send, 404, b'{"title":"Not Found"}')
