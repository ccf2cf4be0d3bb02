"""Event store backends behind one contract; `open_store` picks one from a URL."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from eventledger.errors import InvalidInput, UnsupportedStoreURL
from eventledger.stores.base import EventStore

__all__ = ["EventStore", "open_store"]


async def open_store(url: str) -> EventStore:
    """Open the event store at `url`, creating or upgrading its schema if needed.

    - ``memory://`` a private in-memory log; ``memory://name`` one shared by name
      within this process;
    - ``sqlite:///path/to/events.db`` (relative) or ``sqlite:////abs/events.db``;
    - ``postgresql://user@host:5432/database?schema=eventledger``.

    >>> import asyncio
    >>> async def main() -> int:
    ...     async with await open_store("memory://") as store:
    ...         return await store.stream_version("Order-1")
    >>> asyncio.run(main())
    0
    """
    if not isinstance(url, str):
        raise InvalidInput(f"a store URL must be a string, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise UnsupportedStoreURL(
            f"{url!r} is not a store URL; use memory://, sqlite:///events.db or postgresql://..."
        )
    if scheme == "memory":
        from eventledger.stores.memory import MemoryStore

        return MemoryStore(rest)
    if scheme == "sqlite":
        from eventledger.stores.sqlite import SQLiteStore

        if not rest.startswith("/"):
            raise UnsupportedStoreURL(
                f"{url!r}: a SQLite URL has three slashes before a relative path"
                " (sqlite:///events.db) and four before an absolute one (sqlite:////tmp/events.db)"
            )
        parts = urlsplit("sqlite://" + rest)
        settings = dict(parse_qsl(parts.query))
        unknown = set(settings) - {"synchronous", "timeout"}
        if unknown:
            raise UnsupportedStoreURL(
                f"unknown SQLite setting(s) {', '.join(sorted(unknown))};"
                " known: synchronous, timeout"
            )
        options: dict[str, object] = {}
        if "synchronous" in settings:
            options["synchronous"] = settings["synchronous"]
        if "timeout" in settings:
            try:
                options["timeout"] = float(settings["timeout"])
            except ValueError:
                raise InvalidInput(
                    f"timeout must be a number of seconds, not {settings['timeout']!r}"
                ) from None
        return await SQLiteStore.open(unquote(parts.path[1:]), **options)
    if scheme in ("postgresql", "postgres"):
        try:
            from eventledger.stores.postgres import PostgresStore
        except ImportError as error:
            if error.name != "asyncpg":
                raise
            raise UnsupportedStoreURL(
                "PostgreSQL needs the asyncpg driver: pip install 'eventledger[postgres]'"
            ) from None

        return await PostgresStore.open(url)
    raise UnsupportedStoreURL(
        f"no store for the scheme {scheme!r} in {url!r}; use memory://, sqlite:/// or postgresql://"
    )
