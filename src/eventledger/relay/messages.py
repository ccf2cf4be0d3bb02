"""How an event travels as a NATS message: its subject, its headers and its body.

- **Subject**: ``<prefix>.<category>.<type>``, each of the two names one subject
  token. NATS tokens cannot hold ``.``, whitespace, ``*`` or ``>``, so a name keeps
  ASCII letters, digits, ``_`` and ``-`` as they are, and every other character
  becomes ``%`` and two upper-case hex digits per byte of its UTF-8 form (``%`` itself
  is ``%25``); an empty name is the token ``%``. The mapping is one to one, so
  :func:`token_text` gives the name back.
- **Body**: the event's data, as compact JSON (nothing else).
- **Headers**: ``Nats-Msg-Id`` is the event id (JetStream drops a message whose id it
  saw within the stream's duplicate window); the rest of the event is in
  ``Eventledger-*`` headers (:data:`HEADERS`). The whole metadata is in
  ``Eventledger-Metadata`` (JSON, ASCII only), its correlation and causation ids
  also in headers of their own, for servers and tools that filter on them.

>>> subject_token("Order"), subject_token("orders.OrderPlaced"), subject_token("a b*>%é")
('Order', 'orders%2EOrderPlaced', 'a%20b%2A%3E%25%C3%A9')
>>> token_text("orders%2EOrderPlaced"), token_text("%")
('orders.OrderPlaced', '')
>>> event_subject("eventledger", "Order-12", "orders.OrderPlaced")
'eventledger.Order.orders%2EOrderPlaced'
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from eventledger.errors import EventDecodeError, InvalidInput
from eventledger.personal.markers import redaction, value_at, with_value
from eventledger.records import RecordedEvent, stream_category

__all__ = [
    "CAUSATION_ID",
    "CORRELATION_ID",
    "EVENT_TYPE",
    "HEADERS",
    "METADATA",
    "MSG_ID",
    "POSITION",
    "RECORDED_AT",
    "SCHEMA_VERSION",
    "STREAM_ID",
    "VERSION",
    "check_prefix",
    "event_subject",
    "from_message",
    "redacted",
    "subject_token",
    "to_message",
    "token_text",
]

MSG_ID = "Nats-Msg-Id"
POSITION = "Eventledger-Position"
STREAM_ID = "Eventledger-Stream-Id"
VERSION = "Eventledger-Version"
EVENT_TYPE = "Eventledger-Type"
SCHEMA_VERSION = "Eventledger-Schema-Version"
RECORDED_AT = "Eventledger-Recorded-At"
CORRELATION_ID = "Eventledger-Correlation-Id"
CAUSATION_ID = "Eventledger-Causation-Id"
METADATA = "Eventledger-Metadata"
HEADERS = (
    MSG_ID,
    POSITION,
    STREAM_ID,
    VERSION,
    EVENT_TYPE,
    SCHEMA_VERSION,
    RECORDED_AT,
    CORRELATION_ID,
    CAUSATION_ID,
    METADATA,
)
"""Every header the relay writes, in the order it writes them (the last three only when
the event's metadata has something to put there)."""

_PERSONAL = "_personal"  # eventledger.personal.PERSONAL_KEY, without importing the keyring
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_TOKEN = re.compile(r"[A-Za-z0-9_\-]*(?:%[0-9A-F]{2}[A-Za-z0-9_\-]*)*")
_PREFIX_TOKEN = re.compile(r"[A-Za-z0-9_\-]+")
_HEADER_BYTES = len(b"NATS/1.0\r\n\r\n")


def subject_token(name: str) -> str:
    """`name` as one NATS subject token (see the module's docs)."""
    if not name:
        return "%"
    if all(c in _SAFE for c in name):
        return name
    return "".join(
        c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in name
    )


def token_text(token: str) -> str:
    """The name a subject token stands for (the inverse of :func:`subject_token`)."""
    if token == "%":  # noqa: S105 - the empty name, not a password
        return ""
    if not _TOKEN.fullmatch(token):
        raise InvalidInput(f"{token!r} is not a subject token the relay writes")
    if "%" not in token:
        return token
    out = bytearray()
    index = 0
    while index < len(token):
        if token[index] == "%":
            out.append(int(token[index + 1 : index + 3], 16))
            index += 3
        else:
            out += token[index].encode()
            index += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{token!r} does not decode as UTF-8") from None


def check_prefix(prefix: object) -> str:
    """A subject prefix: one or more tokens of letters, digits, ``_`` and ``-``."""
    if not isinstance(prefix, str) or not all(
        _PREFIX_TOKEN.fullmatch(t) for t in prefix.split(".")
    ):
        raise InvalidInput(
            f"the subject prefix is dot-separated words of letters, digits, _ and -"
            f" (eventledger, acme.orders), not {prefix!r}"
        )
    return prefix


def event_subject(prefix: str, stream_id: str, event_type: str) -> str:
    """The subject an event of stream `stream_id` and type `event_type` goes to."""
    return f"{prefix}.{subject_token(stream_category(stream_id))}.{subject_token(event_type)}"


def redacted(record: RecordedEvent) -> RecordedEvent:
    """`record` with each personal value (the paths its metadata's ``_personal`` names)
    replaced by the redaction marker of its subject, as if the subject were forgotten."""
    marks = record.metadata.get(_PERSONAL)
    if not isinstance(marks, dict) or not marks:
        return record
    data = record.data
    for path, subject in marks.items():
        if not isinstance(path, str) or not isinstance(subject, str):
            continue
        found, _ = value_at(data, path)
        if found:
            data = with_value(data, path, redaction(subject))
    return record._replace(data=data)


def to_message(record: RecordedEvent, prefix: str) -> tuple[str, bytes, dict[str, str], int]:
    """The subject, body and headers of `record`'s message, and its size in bytes as the
    server counts it against ``max_payload`` (headers and body)."""
    headers = {
        MSG_ID: str(record.id),
        POSITION: str(record.position),
        STREAM_ID: record.stream_id,
        VERSION: str(record.version),
        EVENT_TYPE: record.type,
        SCHEMA_VERSION: str(record.schema_version),
        RECORDED_AT: record.recorded_at.isoformat(),
    }
    metadata = record.metadata
    if metadata:
        correlation = metadata.get("correlation_id")
        causation = metadata.get("causation_id")
        if isinstance(correlation, str) and correlation:
            headers[CORRELATION_ID] = correlation
        if isinstance(causation, str) and causation:
            headers[CAUSATION_ID] = causation
        text = orjson.dumps(metadata).decode()
        if not text.isascii():  # header values stay ASCII: other clients read them too
            text = json.dumps(metadata, ensure_ascii=True, separators=(",", ":"))
        headers[METADATA] = text
    body = orjson.dumps(record.data)
    size = _HEADER_BYTES + len(body)
    for key, value in headers.items():
        size += len(key) + len(value.encode()) + 4  # "key: value\r\n"
    return event_subject(prefix, record.stream_id, record.type), body, headers, size


def from_message(subject: str, body: bytes, headers: Mapping[str, str] | None) -> RecordedEvent:
    """The event a relay message carries; :class:`~eventledger.EventDecodeError` when
    the message did not come from a relay."""
    found = headers or {}
    missing = [h for h in HEADERS[:7] if h not in found]
    if missing:
        raise EventDecodeError(
            f"the message on {subject} has no {', '.join(missing)} header: it was not"
            " published by an eventledger relay"
        )
    try:
        metadata_text = found.get(METADATA)
        metadata: dict[str, Any] = json.loads(metadata_text) if metadata_text else {}
        data = orjson.loads(body)
        if not isinstance(data, dict) or not isinstance(metadata, dict):
            raise ValueError("data and metadata are JSON objects")
        return RecordedEvent(
            uuid.UUID(found[MSG_ID]),
            found[STREAM_ID],
            int(found[VERSION]),
            int(found[POSITION]),
            found[EVENT_TYPE],
            int(found[SCHEMA_VERSION]),
            data,
            metadata,
            datetime.fromisoformat(found[RECORDED_AT]),
        )
    except ValueError as error:  # orjson's JSONDecodeError is a ValueError too
        raise EventDecodeError(
            f"the message on {subject} (event {found.get(MSG_ID)}) cannot be read back as an"
            f" event: {error}"
        ) from None
