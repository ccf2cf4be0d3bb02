"""The memory backend's subject keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from eventledger.storage import SubjectKey
from eventledger.stores.base import StoreTransaction
from eventledger.stores.memory.log import MemoryLog, in_transaction

__all__ = ["MemoryPersonalDataStorage"]


class MemoryPersonalDataStorage:
    """:class:`~eventledger.storage.PersonalDataStorage` of a memory store."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log

    async def subject_keys(self, subjects: Sequence[str]) -> dict[str, SubjectKey]:
        with self.log.lock:
            keys = self.log.subject_keys
            return {s: keys[s] for s in subjects if s in keys}

    async def add_subject_keys(
        self,
        tx: StoreTransaction,
        keys: Sequence[SubjectKey],
        streams: Sequence[tuple[str, str]],
    ) -> dict[str, SubjectKey]:
        memory = in_transaction(tx)
        log = self.log
        with log.lock:
            # What the transaction would find now; the commit checks it again.
            found = {k.subject: log.subject_keys.get(k.subject, k) for k in keys}

        def unchanged() -> None:
            for subject, key in found.items():
                if log.subject_keys.get(subject, key) != key:
                    from eventledger.errors import ConflictError

                    raise ConflictError(
                        f"another transaction stored a data key for subject {subject!r}"
                        " at the same time; run it again"
                    )

        def store() -> None:
            for key in keys:
                log.subject_keys.setdefault(key.subject, key)
            for subject, stream_id in streams:
                log.subject_streams.setdefault(subject, set()).add(stream_id)

        memory.require(unchanged)
        memory.defer(store)
        return found

    async def forget_subject(self, tx: StoreTransaction, subject: str, when: datetime) -> list[str]:
        memory = in_transaction(tx)
        log = self.log
        with log.lock:
            streams = sorted(log.subject_streams.get(subject, ()))

        def forget() -> None:
            key = log.subject_keys.get(subject)
            if key is None:
                log.subject_keys[subject] = SubjectKey(subject, None, when, when)
            else:
                log.subject_keys[subject] = dataclasses.replace(
                    key, wrapped=None, forgotten_at=key.forgotten_at or when
                )
            for stream_id in log.subject_streams.get(subject, ()):
                log.snapshots.pop(stream_id, None)

        memory.defer(forget)
        return streams

    async def subject_streams(self, subject: str) -> list[str]:
        with self.log.lock:
            return sorted(self.log.subject_streams.get(subject, ()))
