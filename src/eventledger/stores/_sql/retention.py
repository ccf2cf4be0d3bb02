"""Soft-delete marks and deleted events of streams in SQL (see :mod:`eventledger.retention`).

One row per stream in ``stream_marks``: ``deleted_before`` (events below it were
deleted for good; the stream's version never goes below ``deleted_before - 1``) and
``hidden_before`` (a soft delete). The backends' reads consult it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventledger.storage import StreamExtent
from eventledger.stores._keys import prefix_upper_bound
from eventledger.stores._sql.dialect import Dialect
from eventledger.stores.base import EventStore, StoreTransaction

__all__ = ["SqlRetentionStorage"]


class SqlRetentionStorage:
    """:class:`~eventledger.storage.RetentionStorage` in the store's own database."""

    def __init__(self, store: EventStore, dialect: Dialect) -> None:
        self.store = store
        self.sql = dialect

    async def lock_stream(self, tx: StoreTransaction, stream_id: str) -> StreamExtent:
        d = self.sql
        marks, events = d.t("stream_marks"), d.t("events")
        await tx.execute(
            f"INSERT INTO {marks} (stream_id) VALUES ({d.p(1)}) ON CONFLICT (stream_id) DO NOTHING",
            stream_id,
        )
        # Writing the row locks it (PostgreSQL) until the transaction ends; SQLite's
        # transaction holds the file's write lock already.
        await tx.execute(
            f"UPDATE {marks} SET deleted_before = deleted_before WHERE stream_id = {d.p(1)}",
            stream_id,
        )
        row = await tx.fetchrow(
            f"SELECT m.deleted_before, m.hidden_before,"
            f" (SELECT max(e.version) FROM {events} e WHERE e.stream_id = {d.p(1)}),"
            f" (SELECT min(e.version) FROM {events} e WHERE e.stream_id = {d.p(2)})"
            f" FROM {marks} m WHERE m.stream_id = {d.p(3)}",
            stream_id,
            stream_id,
            stream_id,
        )
        assert row is not None  # inserted above
        return _extent(stream_id, row)

    async def hide_stream(
        self, tx: StoreTransaction, stream_id: str, before_version: int, when: datetime
    ) -> None:
        d = self.sql
        await tx.execute(
            f"INSERT INTO {d.t('stream_marks')} (stream_id, hidden_before, hidden_at)"
            f" VALUES ({d.marks(3)}) ON CONFLICT (stream_id) DO UPDATE"
            " SET hidden_before = excluded.hidden_before, hidden_at = excluded.hidden_at",
            stream_id,
            before_version,
            d.time_param(when),
        )
        # Snapshots are a cache: a hidden stream keeps none (restored, it makes them anew).
        await tx.execute(f"DELETE FROM {d.t('snapshots')} WHERE stream_id = {d.p(1)}", stream_id)

    async def show_stream(self, tx: StoreTransaction, stream_id: str) -> None:
        d = self.sql
        await tx.execute(
            f"UPDATE {d.t('stream_marks')} SET hidden_before = NULL, hidden_at = NULL"
            f" WHERE stream_id = {d.p(1)}",
            stream_id,
        )

    async def delete_events(
        self, tx: StoreTransaction, stream_id: str, before_version: int, *, whole: bool = False
    ) -> int:
        d = self.sql
        marks = d.t("stream_marks")
        count = await tx.fetchval(
            f"SELECT count(*) FROM {d.t('events')} WHERE stream_id = {d.p(1)}"
            f" AND version < {d.p(2)}",
            stream_id,
            before_version,
        )
        await tx.execute(
            f"DELETE FROM {d.t('events')} WHERE stream_id = {d.p(1)} AND version < {d.p(2)}",
            stream_id,
            before_version,
        )
        await tx.execute(
            f"INSERT INTO {marks} (stream_id, deleted_before) VALUES ({d.marks(2)})"
            " ON CONFLICT (stream_id) DO UPDATE SET deleted_before = CASE"
            f" WHEN {marks}.deleted_before < excluded.deleted_before"
            f" THEN excluded.deleted_before ELSE {marks}.deleted_before END",
            stream_id,
            before_version,
        )
        # A snapshot below the first version left cannot be brought up to date.
        await tx.execute(
            f"DELETE FROM {d.t('snapshots')} WHERE stream_id = {d.p(1)} AND version < {d.p(2)}",
            stream_id,
            before_version + 1 if whole else before_version - 1,
        )
        return int(count or 0)

    async def streams(self, prefix: str, after: str | None, limit: int) -> list[StreamExtent]:
        d = self.sql
        events, marks = d.t("events"), d.t("stream_marks")
        conditions = [f"e.stream_id >= {d.p(1)}"]
        args: list[Any] = [prefix]
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            args.append(upper)
            conditions.append(f"e.stream_id < {d.p(len(args))}")
        if after is not None:
            args.append(after)
            conditions.append(f"e.stream_id > {d.p(len(args))}")
        args.append(limit)
        rows = await self.store.fetch(
            "SELECT s.stream_id, s.last, s.first, coalesce(m.deleted_before, 1), m.hidden_before"
            " FROM (SELECT e.stream_id, max(e.version) AS last, min(e.version) AS first"
            f" FROM {events} e WHERE {' AND '.join(conditions)}"
            f" GROUP BY e.stream_id ORDER BY e.stream_id LIMIT {d.p(len(args))}) s"
            f" LEFT JOIN {marks} m ON m.stream_id = s.stream_id ORDER BY s.stream_id",
            *args,
        )
        return [
            StreamExtent(r[0], max(int(r[1]), int(r[3]) - 1), int(r[2]), int(r[3]), r[4])
            for r in rows
        ]

    async def last_version_before(self, stream_id: str, when: datetime) -> int:
        d = self.sql
        found = await self.store.fetch(
            f"SELECT max(version) FROM {d.t('events')} WHERE stream_id = {d.p(1)}"
            f" AND recorded_at < {d.p(2)}",
            stream_id,
            d.time_param(when),
        )
        return int(found[0][0] or 0) if found else 0


def _extent(stream_id: str, row: Sequence[Any]) -> StreamExtent:
    deleted_before, hidden_before, last, first = row
    version = max(int(last or 0), int(deleted_before) - 1)
    return StreamExtent(
        stream_id,
        version,
        None if first is None else int(first),
        int(deleted_before),
        None if hidden_before is None else int(hidden_before),
    )
