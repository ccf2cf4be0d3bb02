"""A projection runner in a process of its own, for the tests that kill one.

python -m tests.projections.runner_process STORE_URL OWNER
Runs until killed; the projection records, per stream, every event id it applied.
"""

from __future__ import annotations

import asyncio
import sys

from eventledger import open_store
from eventledger.projections import Context, DocumentProjection, ProjectionRunner, on
from eventledger.records import RecordedEvent


class Applied(DocumentProjection):
    name = "applied"

    @on("Ticked")
    async def ticked(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        await asyncio.sleep(0.002)  # slow batches: a kill lands in the middle of one
        doc = await context.docs.get(context.aggregate_id) or {"seen": []}
        doc["seen"].append(str(event.id))
        await context.docs.put(context.aggregate_id, doc)


async def main(url: str, owner: str) -> None:
    store = await open_store(url)
    runner = ProjectionRunner(
        store, [Applied()], batch_size=50, lease_ttl=1.0, poll_interval=0.1, owner=owner
    )
    await runner.start()
    print("started", flush=True)
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
