"""The memory backend's soft-delete marks and deleted events (see
:mod:`eventledger.retention`). A deleted event keeps its place in the log (positions are
list indexes), marked gone, with its payload dropped."""

from __future__ import annotations

from datetime import datetime

from eventledger.storage import StreamExtent
from eventledger.stores.base import StoreTransaction
from eventledger.stores.memory.log import MemoryLog, _Stream, in_transaction

__all__ = ["MemoryRetentionStorage"]


def _extent(stream_id: str, stream: _Stream | None) -> StreamExtent:
    if stream is None:
        return StreamExtent(stream_id, 0, None)
    version = len(stream.positions)
    first = stream.deleted_before if stream.deleted_before <= version else None
    return StreamExtent(stream_id, version, first, stream.deleted_before, stream.hidden_before)


class MemoryRetentionStorage:
    """:class:`~eventledger.storage.RetentionStorage` of a memory store."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log

    async def lock_stream(self, tx: StoreTransaction, stream_id: str) -> StreamExtent:
        memory = in_transaction(tx)
        log = self.log
        with log.lock:
            extent = _extent(stream_id, log.streams.get(stream_id))

        def unchanged() -> None:
            now = _extent(stream_id, log.streams.get(stream_id))
            if (now.deleted_before, now.hidden_before) != (
                extent.deleted_before,
                extent.hidden_before,
            ):
                from eventledger.errors import ConflictError

                raise ConflictError(
                    f"another transaction deleted or restored {stream_id!r} at the same"
                    " time; run it again"
                )

        memory.require(unchanged)
        return extent

    async def hide_stream(
        self, tx: StoreTransaction, stream_id: str, before_version: int, when: datetime
    ) -> None:
        log = self.log

        def hide() -> None:
            stream = log.streams.get(stream_id)
            if stream is not None:
                stream.hidden_before = before_version
            log.snapshots.pop(stream_id, None)

        in_transaction(tx).defer(hide)

    async def show_stream(self, tx: StoreTransaction, stream_id: str) -> None:
        log = self.log

        def show() -> None:
            stream = log.streams.get(stream_id)
            if stream is not None:
                stream.hidden_before = None

        in_transaction(tx).defer(show)

    async def delete_events(
        self, tx: StoreTransaction, stream_id: str, before_version: int, *, whole: bool = False
    ) -> int:
        log = self.log
        with log.lock:
            stream = log.streams.get(stream_id)
            if stream is None:
                return 0
            count = max(0, min(before_version, len(stream.positions) + 1) - stream.deleted_before)

        def delete() -> None:
            stream = log.streams[stream_id]
            end = min(before_version, len(stream.positions) + 1)
            for version in range(stream.deleted_before, end):
                stored = log.events[stream.positions[version - 1] - 1]
                if not stored.gone:
                    stored.gone = True
                    stored.data = stored.metadata = b"{}"
                    log.ids.pop(stored.id, None)
                    log.deleted += 1
            stream.deleted_before = max(stream.deleted_before, before_version)
            snapshots = log.snapshots.get(stream_id, {})
            keep_from = before_version + 1 if whole else before_version - 1
            for version in [v for v in snapshots if v < keep_from]:
                del snapshots[version]

        in_transaction(tx).defer(delete)
        return count

    async def streams(self, prefix: str, after: str | None, limit: int) -> list[StreamExtent]:
        with self.log.lock:
            names = sorted(
                name
                for name, stream in self.log.streams.items()
                if name.startswith(prefix)
                and (after is None or name > after)
                and stream.deleted_before <= len(stream.positions)
            )[:limit]
            return [_extent(name, self.log.streams[name]) for name in names]

    async def last_version_before(self, stream_id: str, when: datetime) -> int:
        with self.log.lock:
            stream = self.log.streams.get(stream_id)
            if stream is None:
                return 0
            found = 0
            for version, position in enumerate(stream.positions, start=1):
                if self.log.events[position - 1].recorded_at >= when:
                    break
                found = version
            return found if found >= stream.deleted_before else 0
