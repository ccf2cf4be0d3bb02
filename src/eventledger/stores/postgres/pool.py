"""A small connection pool for the PostgreSQL store.

asyncpg's own pool resets sessions, wraps connections in proxies and shields
releases in tasks; on a one-statement append that is a third of the client's
work. The store needs less: it changes no session state and never leaves a
transaction open on purpose, so a connection goes back to the pool as it is,
unless it broke or still holds a transaction (then it is thrown away).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

Connect = Callable[[], Awaitable["asyncpg.Connection"]]


class PoolClosed(RuntimeError):
    pass


class ConnectionPool:
    """Up to `max_size` connections, opened on demand; waiters are served in order."""

    def __init__(self, connect: Connect, max_size: int) -> None:
        self._connect = connect
        self._max_size = max_size
        self._idle: list[asyncpg.Connection] = []
        self._waiters: collections.deque[asyncio.Future[asyncpg.Connection]] = collections.deque()
        self._size = 0
        self._closed = False

    async def open(self, min_size: int) -> None:
        for _ in range(min_size):
            self._size += 1
            try:
                self._idle.append(await self._connect())
            except BaseException:
                self._size -= 1
                await self.close()
                raise

    async def acquire(self) -> asyncpg.Connection:
        if self._closed:
            raise PoolClosed("the connection pool is closed")
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
            self._size -= 1
        if self._size < self._max_size:
            self._size += 1
            try:
                return await self._connect()
            except BaseException:
                self._size -= 1
                raise
        waiter: asyncio.Future[asyncpg.Connection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # handed over just as we were cancelled
            raise

    def release(self, conn: asyncpg.Connection, reusable: bool = True) -> None:
        """Give a connection back; `reusable=False` when its last call did not end cleanly."""
        if not reusable or self._closed or conn.is_closed() or conn.is_in_transaction():
            # Broken, cancelled mid-call or left inside a transaction: not reusable.
            if not conn.is_closed():
                conn.terminate()
            self._size -= 1
            self._wake_one_to_connect()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

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
            conn = await self._connect()
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
