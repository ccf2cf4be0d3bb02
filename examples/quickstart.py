"""Append and read events on SQLite: the store contract in thirty lines.

Run it: python examples/quickstart.py [sqlite:///quickstart.db]
"""

from __future__ import annotations

import asyncio
import sys

from eventledger import NO_STREAM, NewEvent, WrongExpectedVersion, open_store


async def main(url: str) -> None:
    async with await open_store(url) as store:
        order = f"Order-{await store.head_position() + 1}"
        placed = NewEvent("OrderPlaced", {"customer": "alice", "total": "19.98"})
        result = await store.append(order, [placed], expected_version=NO_STREAM)
        where = f"version {result.version}, position {result.position}"
        print(f"appended {placed.type} to {order}: {where}")

        # The same append again (say, after a lost answer) is recognised, not repeated.
        assert await store.append(order, [placed], expected_version=NO_STREAM) == result

        # A decision taken on an old version is refused.
        try:
            await store.append(order, [NewEvent("OrderCancelled", {})], expected_version=0)
        except WrongExpectedVersion as conflict:
            print(f"refused: {conflict}")

        await store.append(order, [NewEvent("OrderPaid", {"amount": "19.98"})], expected_version=1)
        print(f"\n{order}:")
        async for event in store.read_stream(order):
            print(f"  v{event.version} {event.type} {event.data} at {event.recorded_at:%H:%M:%S}")

        print("\nthe whole log, in global order (first ten):")
        async for event in store.read_all(limit=10):
            print(f"  #{event.position} {event.stream_id} {event.type}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///quickstart.db"))
