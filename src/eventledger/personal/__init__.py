"""Personal data: each person's values sealed with a key of their own, and forgotten by
deleting that key (crypto-shredding). See docs/personal-data.md.

Declare a field personal, with the field that names its subject:

>>> import asyncio
>>> from typing import Annotated
>>> from eventledger import Event, open_store
>>> class CustomerJoined(Event, name="docs.CustomerJoined"):
...     customer_id: str
...     email: Annotated[str | Redacted, Personal(subject="customer_id")]
>>> async def main() -> tuple[object, object, list[str]]:
...     async with await open_store("memory://") as store:
...         joined = CustomerJoined(customer_id="c-1", email="ann@example.com")
...         await store.append("Customer-c-1", [joined.to_new_event()])
...         before = [e async for e in store.read_stream("Customer-c-1")][0].data["email"]
...         await forget(store, "c-1")
...         after = [e async for e in store.read_stream("Customer-c-1")][0].data["email"]
...         return before, after, (await export(store, "c-1")).streams
>>> asyncio.run(main())
('ann@example.com', {'$redacted': 'c-1'}, ['Customer-c-1'])

Typed events read the marker as :class:`Redacted`:

>>> CustomerJoined.model_validate({"customer_id": "c-1", "email": {"$redacted": "c-1"}})
CustomerJoined(customer_id='c-1', email=Redacted(subject='c-1'))
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventledger.context import event_metadata
from eventledger.events import Event
from eventledger.personal.crypto import (
    ENVIRONMENT_VARIABLE,
    KeyWrapper,
    LocalKeyWrapper,
    SealBroken,
    new_key_text,
)
from eventledger.personal.keyring import (
    MAX_SUBJECT_LENGTH,
    PERSONAL_KEY,
    Keyring,
    SubjectForgottenError,
    check_subject,
)
from eventledger.personal.markers import (
    REDACTED_KEY,
    Personal,
    Redacted,
    personal_fields,
    redaction,
)
from eventledger.stores.base import EventStore

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "FORGOTTEN_EVENT",
    "MAX_SUBJECT_LENGTH",
    "PERSONAL_KEY",
    "REDACTED_KEY",
    "Forgotten",
    "KeyWrapper",
    "Keyring",
    "LocalKeyWrapper",
    "Personal",
    "PersonalValue",
    "Redacted",
    "SealBroken",
    "SubjectExport",
    "SubjectForgotten",
    "SubjectForgottenError",
    "check_subject",
    "export",
    "forget",
    "new_key_text",
    "personal_fields",
    "redaction",
    "scrub",
    "subject_stream",
    "use_key_wrapper",
]

FORGOTTEN_EVENT = "SubjectForgotten"
"""The type of the event :func:`forget` records: ``{"subject": ..., "streams": [...]}``,
in the stream :func:`subject_stream` names. Read models listen for it."""


def subject_stream(subject: str) -> str:
    """The stream of a subject's own events (``Subject-<subject>``)."""
    return f"Subject-{subject}"


def use_key_wrapper(store: EventStore, wrapper: KeyWrapper) -> None:
    """Wrap and unwrap `store`'s data keys with `wrapper` (a KMS, say) instead of the
    key in ``EVENTLEDGER_KEY_ENCRYPTION_KEY``."""
    store.keyring.wrapper = wrapper


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What :func:`forget` did."""

    subject: str
    position: int
    """The position of the ``SubjectForgotten`` event."""
    streams: list[str]
    """The streams whose values of the subject now read as :class:`Redacted`."""
    had_key: bool
    """False when the store held no value of the subject (the subject is still marked
    forgotten, so none is stored later)."""
    already_forgotten: bool = False
    """The subject had been forgotten before (this forget records another event)."""


@dataclass(frozen=True, slots=True)
class PersonalValue:
    """One personal value of a subject, where it is."""

    stream_id: str
    version: int
    position: int
    event_type: str
    recorded_at: datetime
    path: str
    value: Any


@dataclass(frozen=True, slots=True)
class SubjectExport:
    """Everything the store keeps of one subject (an access request's answer)."""

    subject: str
    forgotten: bool
    streams: list[str] = field(default_factory=list)
    values: list[PersonalValue] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "forgotten": self.forgotten,
            "streams": self.streams,
            "values": [
                {
                    "stream_id": v.stream_id,
                    "version": v.version,
                    "position": v.position,
                    "event_type": v.event_type,
                    "recorded_at": v.recorded_at.isoformat(),
                    "path": v.path,
                    "value": v.value,
                }
                for v in self.values
            ],
        }


class SubjectForgotten(Event, name=FORGOTTEN_EVENT):
    """Recorded by :func:`forget` in the stream ``Subject-<subject>``: the subject whose
    key was deleted and the streams that held their values (no personal data)."""

    subject: str
    streams: list[str]


async def forget(store: EventStore, subject: str) -> Forgotten:
    """Forget a subject: delete their data key, so that every value sealed with it reads
    as :class:`Redacted` from now on, discard the snapshots of the streams that held
    their values, and record a ``SubjectForgotten`` event (no personal data in it) in
    one transaction. New personal values of the subject are refused afterwards.

    Read models hear the event and drop what they copied; run :func:`scrub` (or
    ``eventledger forget``, which does) so that freed database pages keep nothing."""
    subject = check_subject(subject)
    store.require("personal_data")
    storage = store.personal_data_storage()
    known = await storage.subject_keys([subject])
    streams = await storage.subject_streams(subject)
    event = SubjectForgotten(subject=subject, streams=streams).to_new_event(event_metadata())
    async with store.transaction() as tx:
        appended = await tx.append(subject_stream(subject), [event])
        streams = await storage.forget_subject(tx, subject, datetime.now(UTC))
    store.keyring.forget_cached(subject)
    key = known.get(subject)
    return Forgotten(
        subject,
        appended.position,
        streams,
        had_key=key is not None and key.wrapped is not None,
        already_forgotten=key is not None and key.wrapped is None,
    )


async def export(store: EventStore, subject: str) -> SubjectExport:
    """Every personal value of `subject` the store keeps, in clear (for an access
    request): each with its stream, version, event type and field path. A forgotten
    subject's export lists the streams and no values."""
    subject = check_subject(subject)
    store.require("personal_data")
    storage = store.personal_data_storage()
    known = (await storage.subject_keys([subject])).get(subject)
    streams = await storage.subject_streams(subject)
    forgotten = known is not None and known.wrapped is None
    values: list[PersonalValue] = []
    if not forgotten:
        for stream_id in streams:
            async for event in store.read_stream(stream_id):
                marks = event.metadata.get(PERSONAL_KEY)
                if not isinstance(marks, dict):
                    continue
                for path, owner in marks.items():
                    if owner != subject:
                        continue
                    value: Any = event.data
                    for part in str(path).split("."):
                        value = value.get(part) if isinstance(value, dict) else None
                    values.append(
                        PersonalValue(
                            event.stream_id,
                            event.version,
                            event.position,
                            event.type,
                            event.recorded_at,
                            str(path),
                            value,
                        )
                    )
    values.sort(key=lambda v: (v.position, v.path))
    return SubjectExport(subject, forgotten, streams, values)


async def scrub(store: EventStore, *, full: bool = False) -> None:
    """Make the database keep nothing of deleted rows in its files: on SQLite, freed
    content is zeroed as it is deleted (``secure_delete``, always on) and this folds the
    write-ahead log into the database and truncates it (``full=True`` also rewrites the
    file with VACUUM); on PostgreSQL this runs VACUUM on eventledger's tables and the
    read models' (``full=True``: VACUUM FULL, which rewrites them and takes an exclusive
    lock while it runs). See docs/personal-data.md for what remains (backups, copies)."""
    await store.scrub(full=full)
