"""The memory backend: everything in this process's memory (tests, small tools).

It keeps the log, the read side, the command log, process managers and API keys;
not SQL read models (it has no SQL).
"""

from eventledger.stores.base import EventStore
from eventledger.stores.memory.store import MemoryStore

__all__ = ["MemoryStore", "open_url"]


async def open_url(url: str) -> EventStore:
    """``memory://`` (a private log) or ``memory://name`` (shared by name in this process)."""
    return MemoryStore(url.partition("://")[2])
