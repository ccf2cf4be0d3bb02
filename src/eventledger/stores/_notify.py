"""Wake-ups for readers waiting at the end of the log.

Every store instance that shares a log within this process shares one
:class:`AppendSignal`, found by a key (the file, the named memory log, the
PostgreSQL database and schema). An append rings it; waiters wake at once.
Other processes are reached by the backend (PostgreSQL: LISTEN/NOTIFY); a
bounded poll covers whatever a wake-up may miss.
"""

from __future__ import annotations

import asyncio
import threading
import weakref


class AppendSignal:
    """A broadcast "the log grew" that any event loop in the process can wait on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    @property
    def generation(self) -> int:
        """Rises with every ring; compare before and after to see whether one happened."""
        return self._generation

    def ring(self) -> None:
        with self._lock:
            self._generation += 1
            waiters, self._waiters = self._waiters, set()
        for loop, future in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_wake, future)

    async def wait(self, since: int, timeout: float) -> bool:
        """Wait until a ring after generation `since`, or `timeout` seconds. True if rung."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._lock:
            if self._generation != since:
                return True
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.discard(entry)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_signals: weakref.WeakValueDictionary[str, AppendSignal] = weakref.WeakValueDictionary()
_signals_lock = threading.Lock()


def signal_for(key: str) -> AppendSignal:
    """The signal shared by every store of this process on the log named by `key`."""
    with _signals_lock:
        signal = _signals.get(key)
        if signal is None:
            signal = _signals[key] = AppendSignal()
        return signal
