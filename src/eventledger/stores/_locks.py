"""A lock that tasks of any event loop, in any thread, can wait for without blocking
their loop: for a resource shared by a whole process (one SQLite writer connection).

asyncio's own lock belongs to the loop it is first used in; a store opened in one
loop and used from another (a test's loop, a worker thread's) would break it.
Waiters are served in order; one cancelled while waiting never keeps the lock.

>>> import asyncio
>>> lock = LoopLock()
>>> async def twice() -> list[int]:
...     order = []
...     async def one(n: int) -> None:
...         async with lock:
...             order.append(n)
...             await asyncio.sleep(0)
...     await asyncio.gather(one(1), one(2))
...     return order
>>> asyncio.run(twice()), asyncio.run(twice())
([1, 2], [1, 2])
"""

from __future__ import annotations

import asyncio
import collections
import threading
from types import TracebackType

__all__ = ["LoopLock"]


class LoopLock:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]
        self._waiters = collections.deque()

    @property
    def locked(self) -> bool:
        return self._held

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._mutex:
            if not self._held:
                self._held = True
                return
            future: asyncio.Future[None] = loop.create_future()
            entry = (loop, future)
            self._waiters.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            with self._mutex:
                handed_over = future.done() and not future.cancelled()
                if not handed_over and entry in self._waiters:
                    self._waiters.remove(entry)
                # (not in the queue: a hand-over is on its way, and passes it on)
            if handed_over:
                self.release()  # it was ours as we were cancelled: pass it on
            raise

    def release(self) -> None:
        with self._mutex:
            while self._waiters:
                loop, future = self._waiters.popleft()
                if loop.is_closed():
                    continue
                # Still held: it passes straight to the next waiter, in its own loop.
                loop.call_soon_threadsafe(self._hand_over, loop, future)
                return
            self._held = False

    def _hand_over(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
        if future.done():  # cancelled meanwhile: the next one gets it
            self.release()
        else:
            future.set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
