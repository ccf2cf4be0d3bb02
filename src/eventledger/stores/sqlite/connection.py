"""A sqlite3 connection on a thread of its own, so that the event loop never waits on
the file."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from eventledger.errors import OperationalError

__all__ = ["Connection"]

T = TypeVar("T")


class Connection:
    """A sqlite3 connection that lives on its own thread; calls are awaited."""

    def __init__(self, path: str, synchronous: str, timeout: float) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eventledger-sqlite")
        self._path = path
        self._synchronous = synchronous
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        conn = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            # Deleted content is overwritten, so that a forgotten person's values do not
            # linger in free pages (eventledger.personal).
            conn.execute("PRAGMA secure_delete = ON")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.wrap_future(self.submit(work))

    def submit(self, work: Callable[[sqlite3.Connection], T]) -> concurrent.futures.Future[T]:
        """Queue `work` on the connection's thread (calls run in the order submitted)."""

        def call() -> T:
            try:
                if self._conn is None:
                    self._open()
                assert self._conn is not None
                return work(self._conn)
            except sqlite3.IntegrityError:
                raise  # an invariant of the log; the store decides what it means
            except sqlite3.DatabaseError as error:
                raise OperationalError(f"SQLite {self._path}: {error}") from error

        return self._executor.submit(call)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)
