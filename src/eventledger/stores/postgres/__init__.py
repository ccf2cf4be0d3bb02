"""The PostgreSQL backend, for production: the log and everything else in one schema.
Needs the ``postgres`` extra (asyncpg)."""

from eventledger.stores.base import EventStore
from eventledger.stores.postgres.store import PostgresStore
from eventledger.stores.postgres.url import split_url

__all__ = ["PostgresStore", "open_url", "split_url"]


async def open_url(url: str) -> EventStore:
    """A libpq-style ``postgresql://`` URL with eventledger's settings (see
    :mod:`eventledger.stores.postgres.store`)."""
    return await PostgresStore.open(url)
