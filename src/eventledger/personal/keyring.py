"""A store's keyring: seals personal values on append, opens them on read, forgets.

Each subject's data key is made on their first personal value and stored (wrapped)
in the same transaction as the events it seals, so no event is ever sealed with a key
that was not kept. Unwrapped keys are cached for `cache_seconds` (default 5): a
subject forgotten by another process reads as forgotten here within that time (at
once in the process that forgot them).
"""

from __future__ import annotations

import functools
import os
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eventledger._validation import (
    MAX_STREAM_ID_LENGTH,
    PERSONAL_METADATA_KEY,
    check_stream_id,
)
from eventledger.errors import ConflictError, InvalidInput
from eventledger.personal.crypto import (
    AESGCM,
    ENVIRONMENT_VARIABLE,
    KeyWrapper,
    LocalKeyWrapper,
    SealBroken,
    new_data_key,
    open_sealed,
    seal,
)
from eventledger.personal.markers import redaction, value_at, with_value
from eventledger.records import NewEvent, RecordedEvent
from eventledger.storage import SubjectKey

if TYPE_CHECKING:
    from eventledger.storage import PersonalDataStorage
    from eventledger.stores.base import EventStore, StoreTransaction

__all__ = [
    "MAX_SUBJECT_LENGTH",
    "PERSONAL_KEY",
    "Keyring",
    "SubjectForgottenError",
    "check_subject",
]

PERSONAL_KEY = PERSONAL_METADATA_KEY
"""The metadata entry of an event with personal values: ``{path: subject}``."""

_VALID_SUBJECTS_KEPT = 100_000
_valid_subjects: set[str] = set()
"""Subject ids that passed :func:`check_subject` (checked once, like event types)."""
_KNOWN_LINKS = 100_000
_CACHED_KEYS = 100_000

MAX_SUBJECT_LENGTH = MAX_STREAM_ID_LENGTH - len("Subject-")
"""The longest subject id: ``Subject-<id>`` names the stream that records their forget."""


def check_subject(subject: object, where: str = "a subject id") -> str:
    """`subject` if it can be sealed for and forgotten: 1 to 247 characters that a stream
    id may hold (no control characters, no whitespace at either end)."""
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_LENGTH:
        raise InvalidInput(
            f"{where} is 1 to {MAX_SUBJECT_LENGTH} characters (Subject-<id> names the stream"
            f" of their SubjectForgotten event), not {subject!r}"
        )
    try:
        if subject != subject.strip():
            raise InvalidInput("whitespace at an end")
        check_stream_id(f"Subject-{subject}")
    except InvalidInput:
        raise InvalidInput(
            f"{where} must hold no control characters and no whitespace at either end,"
            f" not {subject!r}"
        ) from None
    return subject


class KeyMadeElsewhere(ConflictError):
    """Another writer stored a data key for the same new subject first: seal again."""


class SubjectForgottenError(InvalidInput):
    """New personal values for a subject who was forgotten: refused, so that nothing is
    kept of someone who asked to be forgotten."""


@dataclass(slots=True)
class Sealing:
    """What an append's sealing needs stored with its events."""

    keys: list[SubjectKey] = field(default_factory=list)
    opened: dict[str, AESGCM] = field(default_factory=dict)
    links: list[tuple[str, str]] = field(default_factory=list)


class Keyring:
    """Seals and opens the personal values of one store's events."""

    def __init__(
        self,
        store: EventStore,
        wrapper: KeyWrapper | None = None,
        *,
        cache_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._wrapper = wrapper
        self._keys: dict[str, tuple[float, AESGCM | None]] = {}
        self._links: OrderedDict[tuple[str, str], None] = OrderedDict()

    @property
    def storage(self) -> PersonalDataStorage:
        return self.store.personal_data_storage()

    @property
    def wrapper(self) -> KeyWrapper:
        """The key-encryption key: the one given, else ``EVENTLEDGER_KEY_ENCRYPTION_KEY``;
        a memory store without either makes one that lives as long as its log."""
        if self._wrapper is None:
            self._wrapper = LocalKeyWrapper.from_environment()
        if self._wrapper is None:
            if self.store.ephemeral:
                self._wrapper = LocalKeyWrapper(os.urandom(32))
            else:
                raise InvalidInput(
                    f"events with personal fields need a key-encryption key: set"
                    f" {ENVIRONMENT_VARIABLE} (make one with: eventledger personal-key), or"
                    " call eventledger.personal.use_key_wrapper(store, wrapper) for a KMS"
                )
        return self._wrapper

    @wrapper.setter
    def wrapper(self, wrapper: KeyWrapper) -> None:
        if not isinstance(wrapper, KeyWrapper):
            raise InvalidInput(f"a key wrapper has async wrap() and unwrap(), not {wrapper!r}")
        self._wrapper = wrapper
        self._keys.clear()

    # --- keys ------------------------------------------------------------------------------

    async def _opened(self, subjects: Sequence[str]) -> dict[str, AESGCM | None]:
        """Each subject's data key, None for a forgotten subject; subjects without a key
        are left out."""
        now = time.monotonic()
        found: dict[str, AESGCM | None] = {}
        missing = []
        for subject in subjects:
            cached = self._keys.get(subject)
            if cached is not None and now - cached[0] < self.cache_seconds:
                found[subject] = cached[1]
            else:
                missing.append(subject)
        if missing:
            stored = await self.storage.subject_keys(missing)
            for subject, key in stored.items():
                opened = await self._unwrap(key)
                self._cache(subject, now, opened)
                found[subject] = opened
        return found

    async def _unwrap(self, key: SubjectKey) -> AESGCM | None:
        if key.wrapped is None:
            return None
        return AESGCM(await self.wrapper.unwrap(key.subject, key.wrapped))

    def _cache(self, subject: str, now: float, opened: AESGCM | None) -> None:
        keys = self._keys
        keys.pop(subject, None)
        keys[subject] = (now, opened)
        while len(keys) > _CACHED_KEYS:  # the oldest entries go first
            del keys[next(iter(keys))]

    def forget_cached(self, subject: str) -> None:
        self._cache(subject, time.monotonic(), None)

    # --- append ----------------------------------------------------------------------------

    async def seal(
        self, stream_id: str, events: Sequence[NewEvent]
    ) -> tuple[list[NewEvent], Sealing | None]:
        """The events with their personal values sealed, and what to store with them."""
        plans = [_plan(event) for event in events]
        subjects = sorted({s for plan in plans for s in plan.values()})
        if not subjects:
            return list(events), None
        keys = await self._opened(subjects)
        sealing = Sealing()
        for subject in subjects:
            if subject in keys:
                opened = keys[subject]
                if opened is None:
                    raise SubjectForgottenError(
                        f"subject {subject!r} was forgotten; their personal values are not"
                        " stored again (use a new subject id for a new relationship)"
                    )
                sealing.opened[subject] = opened
                continue
            data_key = new_data_key()
            wrapped = await self.wrapper.wrap(subject, data_key)
            sealing.keys.append(SubjectKey(subject, wrapped, datetime.now(UTC)))
            sealing.opened[subject] = AESGCM(data_key)
        for subject in subjects:
            if (subject, stream_id) not in self._links:
                sealing.links.append((subject, stream_id))
        sealed = [
            _sealed(event, plan, sealing.opened) if plan else event
            for event, plan in zip(events, plans, strict=True)
        ]
        return sealed, sealing

    async def record(self, tx: StoreTransaction, sealing: Sealing) -> None:
        """Store the new keys and links in `tx`; fails the transaction (a conflict, to be
        run again) when another one stored a key for the same subject first."""
        if not sealing.keys and not sealing.links:
            return
        stored = await self.storage.add_subject_keys(tx, sealing.keys, sealing.links)
        for key in sealing.keys:
            if stored.get(key.subject, key).wrapped != key.wrapped:
                self._keys.pop(key.subject, None)
                raise KeyMadeElsewhere(
                    f"another writer made a data key for subject {key.subject!r} at the same"
                    " time; run the append again"
                )

        def remember() -> None:
            now = time.monotonic()
            for key in sealing.keys:
                self._cache(key.subject, now, sealing.opened[key.subject])
            for link in sealing.links:
                self._links[link] = None
            while len(self._links) > _KNOWN_LINKS:
                self._links.popitem(last=False)

        tx.on_commit(remember)

    # --- read ------------------------------------------------------------------------------

    async def open_page(self, page: list[RecordedEvent]) -> list[RecordedEvent]:
        """The events with their personal values in clear (or redacted)."""
        subjects = {
            s
            for event in page
            if isinstance(marks := event.metadata.get(PERSONAL_KEY), dict)
            for s in marks.values()
            if isinstance(s, str)
        }
        if not subjects:
            return page
        keys = await self._opened(sorted(subjects))
        return [
            self._open(event, keys) if PERSONAL_KEY in event.metadata else event for event in page
        ]

    def _open(self, event: RecordedEvent, keys: Mapping[str, AESGCM | None]) -> RecordedEvent:
        marks = event.metadata[PERSONAL_KEY]
        if not isinstance(marks, dict):
            return event
        data = dict(event.data)  # one copy per event; nested paths copy their own dicts
        prefix = b""
        for path, subject in marks.items():
            if not isinstance(path, str) or not isinstance(subject, str):
                continue
            opened = keys.get(subject)
            value: Any = None
            if opened is not None:
                found, sealed = (
                    (path in data, data.get(path)) if "." not in path else value_at(data, path)
                )
                if found:
                    # The associated data: "<event id>\x1f<path>\x1f<subject>", UTF-8.
                    prefix = prefix or f"{event.id}\x1f".encode()
                    tail = _tails.get((path, subject))
                    if tail is None:
                        tail = f"{path}\x1f{subject}".encode()
                        if len(_tails) < _TAILS_KEPT:
                            _tails[path, subject] = tail
                    try:
                        value = open_sealed(opened, sealed, prefix + tail)
                    except SealBroken:
                        value = None
            if value is None:
                value = redaction(subject)
            if "." in path:
                data = with_value(data, path, value)
            else:
                data[path] = value
        return _make_event(
            (
                event.id,
                event.stream_id,
                event.version,
                event.position,
                event.type,
                event.schema_version,
                data,
                event.metadata,
                event.recorded_at,
            )
        )


_make_event = functools.partial(tuple.__new__, RecordedEvent)
_TAILS_KEPT = 100_000
_tails: dict[tuple[str, str], bytes] = {}
"""The associated data's end for a path and subject, encoded once."""


def _marks(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {p: s for p, s in value.items() if isinstance(p, str) and isinstance(s, str)}


def _plan(event: NewEvent) -> dict[str, str]:
    """Each personal path of `event` that holds a value, and its subject's id."""
    personal = event.personal
    if not personal:
        return {}
    if PERSONAL_KEY in event.metadata:
        raise InvalidInput(f"{event.type}: metadata key {PERSONAL_KEY!r} is eventledger's own")
    plan = {}
    data = event.data
    for path, subject_path in personal.items():
        # Top-level fields (most) are looked up directly; dotted paths walk the dicts.
        if "." in path:
            found, value = value_at(data, path)
        else:
            found, value = path in data, data.get(path)
        if not found or value is None:
            continue
        if "." in subject_path:
            has_subject, subject = value_at(data, subject_path)
        else:
            has_subject, subject = subject_path in data, data.get(subject_path)
        if type(subject) is str and subject in _valid_subjects:
            plan[path] = subject
            continue
        if not has_subject or not isinstance(subject, str | int) or isinstance(subject, bool):
            raise InvalidInput(
                f"{event.type}.{path} is personal data of the subject in {subject_path!r},"
                f" which holds {subject!r}: a subject id is a non-empty string"
            )
        plan[path] = check_subject(str(subject), f"{event.type}.{path}: the subject id")
        if len(_valid_subjects) < _VALID_SUBJECTS_KEPT:
            _valid_subjects.add(plan[path])
    return plan


def _sealed(event: NewEvent, plan: dict[str, str], opened: Mapping[str, AESGCM]) -> NewEvent:
    data = dict(event.data)  # one copy; dotted paths copy the dicts on their way
    event_id = str(event.id)
    for path, subject in plan.items():
        associated = f"{event_id}\x1f{path}\x1f{subject}".encode()
        if "." in path:
            _, value = value_at(data, path)
            data = with_value(data, path, seal(opened[subject], value, associated))
        else:
            data[path] = seal(opened[subject], data[path], associated)
    metadata = {**event.metadata, PERSONAL_KEY: plan}
    return NewEvent(event.type, data, metadata, event.id, event.schema_version)
