"""Event store backends behind one contract; `open_store` picks one from a URL."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

from eventledger._validation import MAX_MAX_EVENT_SIZE
from eventledger.errors import InvalidInput, UnsupportedStoreURL
from eventledger.stores.base import EventStore, StoreTransaction

__all__ = ["EventStore", "StoreTransaction", "open_store", "register_backend"]

Opener = Callable[[str], Awaitable[EventStore]]

# The backends that ship with eventledger, imported when first used (each package has
# an `open_url`), and the ones other packages registered.
_BACKENDS = {
    "memory": "eventledger.stores.memory",
    "sqlite": "eventledger.stores.sqlite",
    "postgresql": "eventledger.stores.postgres",
    "postgres": "eventledger.stores.postgres",
}
_openers: dict[str, Opener] = {}


def _take_common_settings(url: str) -> tuple[str, int | None]:
    """The URL without the settings every backend takes, and their values."""
    head, sep, query = url.partition("?")
    if not sep:
        return url, None
    pairs = parse_qsl(query, keep_blank_values=True)
    text = next((value for key, value in pairs if key == "max_event_size"), None)
    rest = [(key, value) for key, value in pairs if key != "max_event_size"]
    url = head + ("?" + urlencode(rest) if rest else "")
    if text is None:
        return url, None
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_MAX_EVENT_SIZE:
        raise InvalidInput(
            f"max_event_size is a number of bytes from 1 to {MAX_MAX_EVENT_SIZE}, not {text!r}"
        )
    return url, size


def register_backend(scheme: str, opener: Opener) -> None:
    """Make ``open_store("<scheme>://...")`` open a store with `opener` (an async function
    of the whole URL): how a backend from another package plugs in. See
    ``docs/architecture.md`` for the protocols and conformance suites a backend passes."""
    if not isinstance(scheme, str) or not scheme.isidentifier() or scheme != scheme.lower():
        raise InvalidInput(f"a URL scheme is a lower-case identifier, not {scheme!r}")
    _openers[scheme] = opener


async def open_store(url: str) -> EventStore:
    """Open the event store at `url`, creating or upgrading its schema if needed.

    - ``memory://`` a private in-memory log; ``memory://name`` one shared by name
      within this process;
    - ``sqlite:///path/to/events.db`` (relative) or ``sqlite:////abs/events.db``;
    - ``postgresql://user@host:5432/database?schema=eventledger``.

    Every URL also takes ``max_event_size=BYTES``: how much JSON (data and
    metadata) one event may take (default 4 MiB), refused the same way on every
    backend before anything is written.

    >>> import asyncio
    >>> async def main() -> int:
    ...     async with await open_store("memory://") as store:
    ...         return await store.stream_version("Order-1")
    >>> asyncio.run(main())
    0
    """
    if not isinstance(url, str):
        raise InvalidInput(f"a store URL must be a string, not {type(url).__name__}")
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise UnsupportedStoreURL(
            f"{url!r} is not a store URL; use memory://, sqlite:///events.db or postgresql://..."
        )
    opener = _openers.get(scheme)
    if opener is None:
        module = _BACKENDS.get(scheme)
        if module is not None:
            try:
                opener = importlib.import_module(module).open_url
            except ImportError as error:
                if error.name != "asyncpg":
                    raise
                raise UnsupportedStoreURL(
                    "PostgreSQL needs the asyncpg driver: install eventledger with the"
                    " postgres extra (from a clone: pip install -e '.[postgres]')"
                ) from None
    if opener is not None:
        url, max_event_size = _take_common_settings(url)
        store = await opener(url)
        if max_event_size is not None:
            store.max_event_size = max_event_size
        return store
    raise UnsupportedStoreURL(
        f"no store for the scheme {scheme!r} in {url!r}; use memory://, sqlite:/// or postgresql://"
    )
