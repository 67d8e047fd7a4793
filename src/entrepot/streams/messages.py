"""What the publisher puts on JetStream: names, subjects, message ids, headers, bodies.

A message's body is the change exactly as the feed shows it to the stream's
audience (:func:`entrepot.changes.service.render_change` through its read view)
with the dataset and its incarnation added, so a consumer can switch to the
HTTP feed at ``seq`` (``?after=seq&incarnation=...``) and back.
"""

from __future__ import annotations

import re
import uuid

import orjson

MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
DATASET = "Entrepot-Dataset"
INCARNATION = "Entrepot-Incarnation"
SEQ = "Entrepot-Seq"
OP = "Entrepot-Op"
RECORD_ID = "Entrepot-Record-Id"

# NATS: a subject is dot-separated tokens without whitespace or wildcards; a stream
# name has no dots, wildcards, whitespace or path separators.
SUBJECT = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SUBJECT = 255


def default_stream_name(dataset: str, grant_id: uuid.UUID | None) -> str:
    base = f"entrepot_{dataset}"
    return base if grant_id is None else f"{base}_grant_{grant_id.hex[:12]}"[:64]


def default_subject(dataset: str, grant_id: uuid.UUID | None) -> str:
    base = f"entrepot.{dataset}"
    return f"{base}.changes" if grant_id is None else f"{base}.grant.{grant_id.hex}"


def message_id(dataset: str, incarnation: str, seq: int) -> str:
    """The same change always gets the same id: a republish within JetStream's
    duplicate window (after a crash, a lost PubAck, a failover) is dropped by it."""
    return f"{dataset}:{incarnation}:{seq}"


def headers(dataset: str, incarnation: str, change: dict[str, object]) -> dict[str, str]:
    seq = int(str(change["seq"]))
    return {
        MSG_ID: message_id(dataset, incarnation, seq),
        DATASET: dataset,
        INCARNATION: incarnation,
        SEQ: str(seq),
        OP: str(change["op"]),
        RECORD_ID: str(change["id"]),
    }


def body(dataset: str, incarnation: str, change: bytes) -> bytes:
    """``{"dataset":..., "incarnation":..., <the feed's change>}``."""
    return b"".join(
        (
            b'{"dataset":',
            orjson.dumps(dataset),
            b',"incarnation":',
            orjson.dumps(incarnation),
            b",",
            change[1:],  # the change object without its opening brace
        )
    )


def position(found: dict[str, str] | None) -> tuple[str, int] | None:
    """(incarnation, seq) that a message's headers carry; None if it is not ours."""
    if not found or SEQ not in found or INCARNATION not in found:
        return None
    try:
        return found[INCARNATION], int(found[SEQ])
    except ValueError:
        return None
