"""Input checks shared by every store: bad input fails here, before anything is written."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from eventledger import _json
from eventledger.errors import EventTooLarge, InvalidInput
from eventledger.records import ExpectedState, ExpectedVersion, NewEvent

MAX_STREAM_ID_LENGTH = 255
MAX_EVENT_TYPE_LENGTH = 200
MAX_METADATA_KEY_LENGTH = 100
MAX_EVENTS_PER_APPEND = (1 << 20) - 1
MAX_INT64 = (1 << 63) - 1
MAX_SCHEMA_VERSION = (1 << 31) - 1
DEFAULT_MAX_EVENT_SIZE = 4 << 20
"""Bytes of JSON (data and metadata) an event may take, unless the store URL says
otherwise: far below what every backend can hold (PostgreSQL keeps at most 1 GB in
a value), and large enough for any event that is a fact rather than a file."""
MAX_MAX_EVENT_SIZE = 128 << 20

_EVENT_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_METADATA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
# C0 and C1 control characters, line and paragraph separators, lone surrogates.
PERSONAL_METADATA_KEY = "_personal"
"""The metadata entry of an event with sealed personal values (eventledger.personal)."""

_FORBIDDEN_IN_STREAM_ID = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


class PreparedEvent(NamedTuple):
    """A validated event with its JSON already encoded; what backends write."""

    id: uuid.UUID
    type: str
    schema_version: int
    data: bytes
    metadata: bytes


def check_stream_id(stream_id: object) -> str:
    if not isinstance(stream_id, str):
        raise InvalidInput(f"stream id must be a string, not {type(stream_id).__name__}")
    if not stream_id:
        raise InvalidInput("stream id must not be empty")
    if len(stream_id) > MAX_STREAM_ID_LENGTH:
        raise InvalidInput(
            f"stream id is {len(stream_id)} characters long; the limit is {MAX_STREAM_ID_LENGTH}"
            f" (it starts {stream_id[:40]!r})"
        )
    bad = _FORBIDDEN_IN_STREAM_ID.search(stream_id)
    if bad:
        raise InvalidInput(
            f"stream id {stream_id!r} contains the control character {bad.group()!r}"
            f" at index {bad.start()}"
        )
    if stream_id != stream_id.strip():
        raise InvalidInput(f"stream id {stream_id!r} must not start or end with whitespace")
    return stream_id


# Names already found valid; most programs use a few dozen, so checking is a set lookup.
_VALID_NAMES_LIMIT = 10_000
_valid_event_types: set[str] = set()
_valid_metadata_keys: set[str] = set()


def check_event_type(event_type: object) -> str:
    if not isinstance(event_type, str):
        raise InvalidInput(f"event type must be a string, not {type(event_type).__name__}")
    if event_type in _valid_event_types:
        return event_type
    if len(event_type) > MAX_EVENT_TYPE_LENGTH or not _EVENT_TYPE.fullmatch(event_type):
        raise InvalidInput(
            f"event type {event_type[: MAX_EVENT_TYPE_LENGTH + 1]!r} is not valid: use an"
            " identifier such as 'OrderPlaced', optionally dotted ('orders.OrderPlaced'),"
            f" of at most {MAX_EVENT_TYPE_LENGTH} characters"
        )
    if len(_valid_event_types) < _VALID_NAMES_LIMIT:
        _valid_event_types.add(event_type)
    return event_type


def check_int(value: object, name: str, *, minimum: int, maximum: int = MAX_INT64) -> int:
    # bool is an int in Python, but True is never a meaningful version or position.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{name} must be an int, not {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise InvalidInput(f"{name} must be between {minimum} and {maximum}, not {value}")
    return value


def check_optional_int(value: object, name: str, *, minimum: int) -> int | None:
    return None if value is None else check_int(value, name, minimum=minimum)


def check_expected_version(expected: object) -> ExpectedVersion:
    if isinstance(expected, ExpectedState):
        return expected
    if not isinstance(expected, int) or isinstance(expected, bool):
        raise InvalidInput(
            "expected_version must be ANY, NO_STREAM, STREAM_EXISTS or an int version,"
            f" not {expected!r}"
        )
    return check_int(expected, "expected_version", minimum=0)


_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def check_datetime(value: object, name: str) -> datetime | None:
    """`value` as a bound of a time window (since, until, as_of, now): aware, and when it
    lies before the year 1 or after the year 9999 once in UTC (0001-01-01T00:00+01:00),
    the first or last time a store can hold instead, which selects the same events
    (every recorded time lies between them), on every backend."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInput(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{name} must be timezone-aware (for example datetime.now(timezone.utc)), not {value}"
        )
    try:
        value.astimezone(UTC)
    except OverflowError:
        return _EARLIEST if value.year == 1 else _LATEST
    return value


def check_metadata_keys(metadata: dict[str, Any], where: str) -> None:
    for key in metadata:
        if key in _valid_metadata_keys:
            continue
        if (
            not isinstance(key, str)
            or len(key) > MAX_METADATA_KEY_LENGTH
            or not _METADATA_KEY.fullmatch(key)
        ):
            raise InvalidInput(
                f"{where}: metadata key {key!r} is not valid: use letters, digits, '_', '.'"
                f" and '-', starting with a letter or '_', at most {MAX_METADATA_KEY_LENGTH}"
                " characters"
            )
        if len(_valid_metadata_keys) < _VALID_NAMES_LIMIT:
            _valid_metadata_keys.add(key)


def prepare_events(
    events: Iterable[NewEvent], max_size: int = DEFAULT_MAX_EVENT_SIZE
) -> list[PreparedEvent]:
    """Validate the events of one append and encode their JSON; an event whose data and
    metadata take more than `max_size` bytes as JSON is refused."""
    if isinstance(events, NewEvent | str | bytes | dict):
        raise InvalidInput("events must be a list of NewEvent, not a single value")
    try:
        batch = list(events)
    except TypeError:
        raise InvalidInput(
            f"events must be a list of NewEvent, not {type(events).__name__}"
        ) from None
    if not batch:
        raise InvalidInput("an append needs at least one event")
    if len(batch) > MAX_EVENTS_PER_APPEND:
        raise InvalidInput(
            f"an append takes at most {MAX_EVENTS_PER_APPEND} events, not {len(batch)};"
            " split it into several appends"
        )
    prepared: list[PreparedEvent] = []
    seen: set[uuid.UUID] = set()
    for index, event in enumerate(batch):
        # The fast path checks without building messages; _explain() says what was wrong.
        if (
            type(event) is not NewEvent
            or type(event.type) is not str
            or event.type not in _valid_event_types
            or type(event.id) is not uuid.UUID
            or event.id in seen
            or type(event.schema_version) is not int
            or not 1 <= event.schema_version <= MAX_SCHEMA_VERSION
            or type(event.data) is not dict
            or type(event.metadata) is not dict
            or not _valid_metadata_keys.issuperset(event.metadata)
        ):
            _explain(index, event, seen)
        seen.add(event.id)
        try:
            data = _json.dumps(event.data)
            metadata = _json.dumps(event.metadata)
        except _json.JSONEncodeError:
            _encode(event.data, f"{_where(index, event)}: data")
            _encode(event.metadata, f"{_where(index, event)}: metadata")
            raise
        if len(data) + len(metadata) > max_size:
            raise EventTooLarge(
                f"{_where(index, event)} takes {len(data) + len(metadata):,} bytes as JSON (data"
                f" and metadata); the store's limit is {max_size:,} (max_event_size in the store"
                " URL): keep large content outside the log and record a reference to it"
            )
        prepared.append(PreparedEvent(event.id, event.type, event.schema_version, data, metadata))
    return prepared


def _where(index: int, event: NewEvent) -> str:
    return f"event {index} ({event.type!r})"


def _explain(index: int, event: object, seen: set[uuid.UUID]) -> None:
    """Raise the error for an event that failed the fast checks, or return if it is fine
    after all (a subclass of NewEvent, a new event type or metadata key)."""
    if not isinstance(event, NewEvent):
        raise InvalidInput(f"event {index} must be a NewEvent, not {type(event).__name__}")
    where = _where(index, event)
    check_event_type(event.type)
    if not isinstance(event.id, uuid.UUID):
        raise InvalidInput(f"{where}: id must be a uuid.UUID, not {type(event.id).__name__}")
    if event.id in seen:
        raise InvalidInput(f"{where}: id {event.id} appears twice in the same append")
    check_int(
        event.schema_version, f"{where}: schema_version", minimum=1, maximum=MAX_SCHEMA_VERSION
    )
    if not isinstance(event.data, dict):
        raise InvalidInput(
            f"{where}: data must be a dict (a JSON object), not {type(event.data).__name__}"
        )
    if not isinstance(event.metadata, dict):
        raise InvalidInput(f"{where}: metadata must be a dict, not {type(event.metadata).__name__}")
    check_metadata_keys(event.metadata, where)


def _encode(value: dict[str, Any], what: str) -> bytes:
    try:
        return _json.dumps(value)
    except _json.JSONEncodeError as error:
        raise InvalidInput(f"{what} cannot be stored as JSON: {error}") from None


def check_event_id(event_id: object) -> uuid.UUID:
    """An event id given as a UUID or its text."""
    if isinstance(event_id, uuid.UUID):
        return event_id
    if isinstance(event_id, str):
        try:
            return uuid.UUID(event_id)
        except ValueError:
            pass
    raise InvalidInput(f"an event id is a UUID, not {event_id!r}")
