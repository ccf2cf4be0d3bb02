"""The subjects' data keys in SQL, and the streams that hold each subject's values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventledger.storage import EPOCH, SubjectKey
from eventledger.stores._sql.dialect import Dialect
from eventledger.stores.base import EventStore, StoreTransaction, library_sql

__all__ = ["SqlPersonalDataStorage"]


class SqlPersonalDataStorage:
    """:class:`~eventledger.storage.PersonalDataStorage` in the store's own database."""

    def __init__(self, store: EventStore, dialect: Dialect) -> None:
        self.store = store
        self.sql = dialect

    def _key(self, row: Sequence[Any]) -> SubjectKey:
        d = self.sql
        wrapped = None if row[1] is None else bytes(row[1])
        return SubjectKey(row[0], wrapped, d.time_value(row[2]) or EPOCH, d.time_value(row[3]))

    def _select(self, subjects: Sequence[str], args: list[Any]) -> str:
        d = self.sql
        return (
            f"SELECT subject, wrapped, created_at, forgotten_at FROM {d.t('subject_keys')}"
            f" WHERE {d.any_of('subject', subjects, args)}"
        )

    async def subject_keys(self, subjects: Sequence[str]) -> dict[str, SubjectKey]:
        if not subjects:
            return {}
        args: list[Any] = []
        rows = await self.store.fetch(self._select(subjects, args), *args)
        return {row[0]: self._key(row) for row in rows}

    @library_sql
    async def add_subject_keys(
        self,
        tx: StoreTransaction,
        keys: Sequence[SubjectKey],
        streams: Sequence[tuple[str, str]],
    ) -> dict[str, SubjectKey]:
        d = self.sql
        if keys:
            await tx.executemany(
                f"INSERT INTO {d.t('subject_keys')} (subject, wrapped, created_at)"
                f" VALUES ({d.marks(3)}) ON CONFLICT (subject) DO NOTHING",
                [(k.subject, k.wrapped, d.time_param(k.created_at)) for k in keys],
            )
        if streams:
            await tx.executemany(
                f"INSERT INTO {d.t('subject_streams')} (subject, stream_id)"
                f" VALUES ({d.marks(2)}) ON CONFLICT (subject, stream_id) DO NOTHING",
                list(streams),
            )
        if not keys:
            return {}
        args: list[Any] = []
        rows = await tx.fetch(self._select([k.subject for k in keys], args), *args)
        return {row[0]: self._key(row) for row in rows}

    async def forget_subject(self, tx: StoreTransaction, subject: str, when: datetime) -> list[str]:
        d = self.sql
        moment = d.time_param(when)
        await tx.execute(
            f"INSERT INTO {d.t('subject_keys')} (subject, wrapped, created_at, forgotten_at)"
            f" VALUES ({d.p(1)}, NULL, {d.p(2)}, {d.p(3)}) ON CONFLICT (subject) DO UPDATE"
            f" SET wrapped = NULL, forgotten_at = coalesce({d.t('subject_keys')}.forgotten_at,"
            " excluded.forgotten_at)",
            subject,
            moment,
            moment,
        )
        rows = await tx.fetch(
            f"SELECT stream_id FROM {d.t('subject_streams')} WHERE subject = {d.p(1)}"
            " ORDER BY stream_id",
            subject,
        )
        await tx.execute(
            f"DELETE FROM {d.t('snapshots')} WHERE stream_id IN (SELECT stream_id FROM"
            f" {d.t('subject_streams')} WHERE subject = {d.p(1)})",
            subject,
        )
        return [row[0] for row in rows]

    async def subject_streams(self, subject: str) -> list[str]:
        d = self.sql
        rows = await self.store.fetch(
            f"SELECT stream_id FROM {d.t('subject_streams')} WHERE subject = {d.p(1)}"
            " ORDER BY stream_id",
            subject,
        )
        return [row[0] for row in rows]
