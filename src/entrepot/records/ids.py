"""Record ids: generated ones sort by creation time; given ones are checked."""

from __future__ import annotations

import os
import re
import time

from entrepot.problems import BadRequest, Unprocessable

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MAX_ID_LENGTH = 255
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def new_id() -> str:
    """A ULID: 48-bit millisecond time then 80 random bits, Crockford base32."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def id_problem(record_id: str) -> str | None:
    if 0 < len(record_id) <= MAX_ID_LENGTH and record_id.isascii() and record_id.isprintable():
        # The usual id, in two C scans: printable ASCII has no control character and
        # always encodes; only "/" is left to look for.
        return "record ids cannot contain '/'" if "/" in record_id else None
    if not record_id:
        return "record ids cannot be empty"
    if len(record_id) > MAX_ID_LENGTH:
        return f"record ids are at most {MAX_ID_LENGTH} characters"
    if "/" in record_id:
        return "record ids cannot contain '/'"
    if _CONTROL.search(record_id):
        return "record ids cannot contain control characters"
    try:
        record_id.encode("utf-8")
    except UnicodeEncodeError:
        return "record ids must be valid Unicode"
    return None


def invalid_id(problem: str, pointer: str) -> Unprocessable:
    """The 422 for an id in a body (at ``pointer``) that ``id_problem`` refused."""
    return Unprocessable(
        "The record id is invalid.", errors=[{"path": pointer, "message": problem}]
    )


def check_id(record_id: str, pointer: str) -> str:
    problem = id_problem(record_id)
    if problem:
        raise invalid_id(problem, pointer)
    return record_id


def check_path_id(record_id: str) -> str:
    """A record id given in the URL: a bad one is the URL's fault (400, saying why),
    found before anything is looked up."""
    problem = id_problem(record_id)
    if problem:
        raise BadRequest(
            f"The record id in the URL is invalid: {problem}.",
            errors=[{"path": "path:record_id", "message": problem}],
        )
    return record_id
