"""Telling an idempotent retry from a reuse of event ids, the same way on every backend."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from typing import NamedTuple

from eventledger.errors import DuplicateEventId
from eventledger.records import AppendResult, ExpectedState, ExpectedVersion


class FoundEvent(NamedTuple):
    """Where an event id is already recorded."""

    id: uuid.UUID
    stream_id: str
    version: int
    position: int


def resolve_repeat(
    stream_id: str,
    expected: ExpectedVersion,
    ids: list[uuid.UUID],
    found: Iterable[FoundEvent],
) -> AppendResult:
    """The first result of an append being retried, or `DuplicateEventId`.

    A retry is the same ids, in the same order, recorded consecutively in the
    same stream, at a place where the expected version would have held.
    """
    where = {event.id: event for event in found}
    text_ids = [str(event_id) for event_id in ids if event_id in where]
    missing = [event_id for event_id in ids if event_id not in where]
    if missing:
        raise DuplicateEventId(
            stream_id,
            text_ids,
            f"{len(text_ids)} of the {len(ids)} ids exist, so this is not a retry of one append",
        )
    records = [where[event_id] for event_id in ids]
    first = records[0]
    elsewhere = sorted({r.stream_id for r in records if r.stream_id != stream_id})
    if elsewhere:
        raise DuplicateEventId(stream_id, text_ids, f"they are in stream {elsewhere[0]!r}")
    for previous, current in itertools.pairwise(records):
        if current.version != previous.version + 1:
            raise DuplicateEventId(
                stream_id, text_ids, "they are not recorded consecutively in this order"
            )
    if not expected_holds(expected, first.version - 1):
        raise DuplicateEventId(
            stream_id,
            text_ids,
            f"they were recorded at versions {first.version}-{records[-1].version},"
            f" where expected version {expected!r} would not have held",
        )
    last = records[-1]
    return AppendResult(last.version, last.position)


def expected_holds(expected: ExpectedVersion, version_before: int) -> bool:
    """Whether a stream at version `version_before` (0 = none) satisfies `expected`."""
    if expected is ExpectedState.ANY:
        return True
    if expected is ExpectedState.NO_STREAM:
        return version_before == 0
    if expected is ExpectedState.STREAM_EXISTS:
        return version_before > 0
    return version_before == expected


def already_recorded(stream_id: str, found: Iterable[FoundEvent]) -> DuplicateEventId:
    """The error for ids a transaction's append found recorded (no retry shortcut there:
    the unit of retry is the transaction)."""
    where = list(found)
    places = sorted({f"{f.stream_id!r} v{f.version}" for f in where})[:3]
    return DuplicateEventId(
        stream_id,
        [str(f.id) for f in where],
        f"at {', '.join(places)}; inside a transaction every appended event must be new",
    )
