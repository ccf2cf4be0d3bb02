"""The SQLite backend: the log and everything else in one file (the embedded default)."""

from urllib.parse import parse_qsl, unquote, urlsplit

from eventledger.errors import InvalidInput, UnsupportedStoreURL
from eventledger.stores.base import EventStore
from eventledger.stores.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore", "open_url"]


async def open_url(url: str) -> EventStore:
    """``sqlite:///relative.db`` or ``sqlite:////absolute.db``, with ``synchronous`` and
    ``timeout`` settings (see :mod:`eventledger.stores.sqlite.store`)."""
    rest = url.partition("://")[2]
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
            f"unknown SQLite setting(s) {', '.join(sorted(unknown))}; known: synchronous, timeout"
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
