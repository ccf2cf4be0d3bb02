"""A runner of a partitioned projection in a process of its own, for the tests that kill
one and that watch partitions spread.

python -m tests.partitions.worker STORE_URL OWNER [LEASE_TTL] [SLOW_SECONDS]
Runs until killed.
"""

from __future__ import annotations

import asyncio
import sys

from eventledger import open_store
from eventledger.projections import Context, DocumentProjection, ProjectionRunner, on
from eventledger.records import RecordedEvent

PARTITIONS = 6


class PerStream(DocumentProjection):
    """Per stream: how many events it saw, the last version, and every time an event came
    after one that is not its predecessor (out of order, repeated or after a gap)."""

    name = "per_stream"
    partitions = PARTITIONS
    slow = 0.0

    @on("Ticked")
    async def ticked(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        if self.slow:
            await asyncio.sleep(self.slow)  # slow batches: a kill lands in the middle of one
        doc = await context.docs.get(context.aggregate_id) or {"count": 0, "last": 0, "bad": []}
        if event.version != doc["last"] + 1:
            doc["bad"].append([doc["last"], event.version])
        doc["count"] += 1
        doc["last"] = event.version
        await context.docs.put(context.aggregate_id, doc)


async def main(url: str, owner: str, lease_ttl: float, slow: float) -> None:
    PerStream.slow = slow
    store = await open_store(url)
    runner = ProjectionRunner(
        store,
        [PerStream()],
        batch_size=100,
        lease_ttl=lease_ttl,
        poll_interval=0.1,
        owner=owner,
    )
    await runner.start()
    print("started", flush=True)
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(
            args[0],
            args[1],
            float(args[2]) if len(args) > 2 else 1.0,
            float(args[3]) if len(args) > 3 else 0.0,
        )
    )
