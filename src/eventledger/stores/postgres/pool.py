"""A small connection pool for the PostgreSQL store.

asyncpg's own pool resets every session on release, wraps connections in proxies
and shields releases in tasks; on a one-statement append that is a third of the
client's work (measured: see ``benchmarks/README.md``). The store needs less,
and this pool does only that:

- a connection goes back as it is after the store's own statements; after a
  transaction in which other code ran SQL, the store resets the session in the
  same round trip as the commit (see ``transaction.py``);
- one that broke, was cancelled mid-call or still holds a transaction is thrown away;
- waiting for a free connection has a time limit (``pool_timeout``), with an error
  that names the pool size;
- connections older than ``pool_max_lifetime`` are replaced, and one idle for a
  while is checked with a round trip before it is handed out.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

Connect = Callable[[], Awaitable["asyncpg.Connection"]]

IDLE_CHECK_AFTER = 30.0
"""Seconds idle after which a connection is checked before it is handed out."""


class PoolClosed(RuntimeError):
    pass


class PoolTimeout(RuntimeError):
    pass


class ConnectionPool:
    """Up to `max_size` connections, opened on demand; waiters are served in order."""

    def __init__(
        self,
        connect: Connect,
        max_size: int,
        *,
        timeout: float = 10.0,
        max_lifetime: float = 1800.0,
    ) -> None:
        self._connect = connect
        self.max_size = max_size
        self.timeout = timeout
        self.max_lifetime = max_lifetime
        self._idle: list[asyncpg.Connection] = []
        self._born: dict[int, float] = {}
        self._idle_since: dict[int, float] = {}
        self._waiters: collections.deque[asyncio.Future[asyncpg.Connection]] = collections.deque()
        self._size = 0
        self._closed = False

    @property
    def size(self) -> int:
        """Connections open or being opened."""
        return self._size

    async def open(self, min_size: int) -> None:
        for _ in range(min_size):
            self._size += 1
            try:
                conn = await self._new()
            except BaseException:
                self._size -= 1
                await self.close()
                raise
            self._park(conn)

    async def _new(self) -> asyncpg.Connection:
        conn = await self._connect()
        self._born[id(conn)] = time.monotonic()
        return conn

    async def acquire(self) -> asyncpg.Connection:
        if self._closed:
            raise PoolClosed("the connection pool is closed")
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            idle_since = self._idle_since.pop(id(conn), now)
            if conn.is_closed() or now - self._born.get(id(conn), now) > self.max_lifetime:
                self._discard(conn)
                continue
            if now - idle_since > IDLE_CHECK_AFTER and not await self._alive(conn):
                self._discard(conn)
                continue
            return conn
        if self._size < self.max_size:
            self._size += 1
            try:
                return await self._new()
            except BaseException:
                self._size -= 1
                raise
        waiter: asyncio.Future[asyncpg.Connection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self.timeout)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                return waiter.result()  # handed over just as the time ran out
            waiter.cancel()
            raise PoolTimeout(
                f"no connection came free within {self.timeout:g} s: all {self.max_size} of"
                " the pool are busy (raise pool_max_size or pool_timeout in the store URL,"
                " or look for long transactions)"
            ) from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())  # handed over just as we were cancelled
            waiter.cancel()
            raise

    async def _alive(self, conn: asyncpg.Connection) -> bool:
        try:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), min(self.timeout, 5.0))
        except Exception:
            return False
        return True

    def release(self, conn: asyncpg.Connection, reusable: bool = True) -> None:
        """Give a connection back; `reusable=False` when its last call did not end cleanly."""
        if (
            not reusable
            or self._closed
            or conn.is_closed()
            or conn.is_in_transaction()
            or time.monotonic() - self._born.get(id(conn), 0.0) > self.max_lifetime
        ):
            # Broken, cancelled mid-call, left inside a transaction, or old: not reused.
            self._discard(conn)
            self._wake_one_to_connect()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._park(conn)

    def _park(self, conn: asyncpg.Connection) -> None:
        self._idle_since[id(conn)] = time.monotonic()
        self._idle.append(conn)

    def _discard(self, conn: asyncpg.Connection) -> None:
        if not conn.is_closed():
            conn.terminate()
        self._born.pop(id(conn), None)
        self._idle_since.pop(id(conn), None)
        self._size -= 1

    def _wake_one_to_connect(self) -> None:
        # A slot came free: the first waiter opens a connection of its own.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                task = asyncio.ensure_future(self._connect_for(waiter))
                task.add_done_callback(_consume)
                return

    async def _connect_for(self, waiter: asyncio.Future[asyncpg.Connection]) -> None:
        self._size += 1
        try:
            conn = await self._new()
        except BaseException as error:
            self._size -= 1
            if not waiter.done():
                waiter.set_exception(error)
            return
        if waiter.done():
            self.release(conn)
        else:
            waiter.set_result(conn)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(PoolClosed("the connection pool was closed"))
        self._waiters.clear()
        for conn in idle:
            self._size -= 1
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except Exception:  # a connection that cannot close cleanly is cut off
                conn.terminate()


def _consume(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()
