"""A Redis cache of read-model queries, tied to the read models' commits.

>>> import asyncio
>>> from eventledger import NewEvent, open_store
>>> from eventledger.projections import Context, DocumentProjection, ProjectionRunner, on
>>> class Tallies(DocumentProjection):
...     @on("Counted")
...     async def counted(self, event, context: Context) -> None:
...         doc = await context.docs.get(context.aggregate_id) or {"count": 0}
...         await context.docs.put(context.aggregate_id, {"count": doc["count"] + 1})
>>> async def main() -> dict:
...     cache = QueryCache("redis://127.0.0.1:6379/0", prefix="doctest-tallies")
...     async with cache, await open_store("memory://") as store:
...         async with ProjectionRunner(store, [Tallies()], cache=cache) as runner:
...             done = await store.append("Tally-a", [NewEvent("Counted", {})])
...             await runner.wait_until("tallies", done.position, timeout=5)
...             tallies = runner.documents("tallies")
...             await tallies.get("a")  # from the database, then kept
...             found = await tallies.get("a")  # from Redis (from the database if it is down)
...         await cache.clear()  # this example's keys
...         return found
>>> asyncio.run(main())
{'count': 1}

See :mod:`eventledger.cache.query_cache` for the rules and ``docs/query-cache.md`` for
why they never serve an answer older than a commit.
"""

from eventledger.cache.documents import CachedDocumentQueries
from eventledger.cache.query_cache import QueryCache

__all__ = ["CachedDocumentQueries", "QueryCache"]
