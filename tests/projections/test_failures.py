"""Failures park, never stall; rebuilds survive crashes (issue 13), on every store."""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

from eventledger import EventStore, NewEvent, open_store
from eventledger.projections import (
    Context,
    DocumentProjection,
    OnFailure,
    ProjectionRunner,
    RetryPolicy,
    on,
)
from eventledger.records import RecordedEvent

FAST = RetryPolicy(max_attempts=2, initial_delay=0.001, max_delay=0.01)


class Prices(DocumentProjection):
    """Keeps what each event says, in a number-indexed field, whatever it is."""

    name = "prices"
    categories = ("Price",)
    indexes: ClassVar[dict[str, str]] = {"price": "number", "code": "text"}
    retry = FAST

    @on("Priced")
    async def priced(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        await context.docs.put(
            context.aggregate_id, {"price": event.data["price"], "code": event.data["code"]}
        )


async def test_a_value_of_the_wrong_kind_in_an_indexed_field_projects_everywhere(
    any_store: EventStore,
) -> None:
    values = [("a", "12.50", "5"), ("b", "not a number", 5), ("c", 7, True), ("d", None, "x")]
    for doc_id, price, code in values:
        result = await any_store.append(
            f"Price-{doc_id}", [NewEvent("Priced", {"price": price, "code": code})]
        )
    async with ProjectionRunner(any_store, [Prices()], poll_interval=0.05) as runner:
        await runner.wait_until("prices", result.position, timeout=10)
        prices = runner.documents("prices")
        found = await prices.find(order_by="price")
        assert [d["price"] for d in found] == [7, "12.50", "not a number", None]
        assert [d["code"] for d in await prices.find({"code": "5"})] == ["5", 5]
        assert await prices.count({"price": None}) == 2
        (status,) = await runner.status("prices")
        assert (status.state, await runner.dead_letters()) == ("running", [])


class Guarded(Prices):
    """Its documents' table refuses one value: a failure outside every handler."""

    name = "guarded"
    retry = RetryPolicy(max_attempts=2, initial_delay=0.001, on_failure=OnFailure.STOP)


async def test_a_batch_that_fails_when_it_writes_parks_the_event_and_reports_it(
    shared_store_url: str,
) -> None:
    store = await open_store(shared_store_url)
    backend = "sqlite" if shared_store_url.startswith("sqlite") else "postgres"
    try:
        for n, code in enumerate(["ok", "ok", "bad", "ok"]):
            result = await store.append(
                f"Price-{n}", [NewEvent("Priced", {"price": n, "code": code})]
            )
        runner = ProjectionRunner(store, [Guarded()], poll_interval=0.05, batch_size=10)
        # The document table exists once the projection is active; then it refuses "bad".
        async with store.transaction() as tx:
            await store.read_side().create_collection(tx, "rm_guarded_g1", Guarded.indexes)
            if backend == "sqlite":
                await tx.execute(
                    "CREATE TRIGGER no_bad BEFORE INSERT ON rm_guarded_g1"
                    " WHEN json_extract(NEW.doc, '$.code') = 'bad'"
                    " BEGIN SELECT RAISE(ABORT, 'bad code'); END"
                )
            else:
                schema = store.schema  # type: ignore[attr-defined]
                await tx.execute(
                    f'ALTER TABLE "{schema}".rm_guarded_g1 ADD CONSTRAINT no_bad'
                    " CHECK ((doc->>'code') IS DISTINCT FROM 'bad')"
                )
        async with runner:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while (await runner.status("guarded"))[0].state != "failed":
                assert loop.time() < deadline, await runner.status("guarded")
                await asyncio.sleep(0.02)
            (letter,) = await runner.dead_letters("guarded")
            assert letter.stream_id == "Price-2"
            (status,) = await runner.status("guarded")
            # Everything before the bad event is in; the projection stops there.
            assert status.position < letter.position
            assert await runner.documents("guarded").count() == 2
            await runner.skip("guarded", letter.id)
            await runner.wait_until("guarded", result.position, timeout=10)
            assert await runner.documents("guarded").count() == 3
    finally:
        await store.close()


class Slow(DocumentProjection):
    name = "slow"
    categories = ("Tick",)
    retry = FAST
    generation_seen: ClassVar[int] = 0

    @on("Ticked")
    async def ticked(self, event: RecordedEvent, context: Context) -> None:
        assert context.docs is not None
        doc = await context.docs.get(context.aggregate_id) or {"count": 0}
        doc["count"] += 1
        await context.docs.put(context.aggregate_id, doc)


async def test_a_rebuild_cut_short_by_a_dying_process_is_finished_by_the_next(
    shared_store_url: str,
) -> None:
    store = await open_store(shared_store_url)
    for n in range(40):
        last = (await store.append(f"Tick-{n % 5}", [NewEvent("Ticked", {"n": n})])).position

    def runner(on: EventStore, owner: str) -> ProjectionRunner:
        return ProjectionRunner(
            on,
            [Slow()],
            batch_size=2,
            rebuild_batches_per_step=1,
            poll_interval=0.02,
            lease_ttl=0.5,
            owner=owner,
        )

    first = runner(store, "first")
    await first.start()
    await first.wait_until("slow", last, timeout=10)
    rebuild = asyncio.ensure_future(first.rebuild("slow"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        (status,) = await first.status("slow")
        if status.rebuild is not None and status.rebuild.events_done > 0:
            break
        assert loop.time() < deadline
        await asyncio.sleep(0.005)
    # The process dies: its task stops, its lease is not released.
    task = first.subscription("slow").task
    assert task is not None
    task.cancel()
    rebuild.cancel()
    for pending in (task, rebuild):
        with contextlib.suppress(BaseException):
            await pending
    assert any(n.startswith("slow@") for n in await store.read_side().checkpoints())
    second_store = await open_store(shared_store_url)
    second = runner(second_store, "second")
    async with second:
        deadline = loop.time() + 20
        while True:
            (status,) = await second.status("slow")
            if status.active and status.rebuild is None and status.generation == 2:
                break
            assert loop.time() < deadline, status
            await asyncio.sleep(0.02)
        await second.wait_until("slow", last, timeout=10)
        docs = await second.documents("slow").find(limit=10)
        assert sum(d["count"] for d in docs) == 40
    checkpoints = await second_store.read_side().checkpoints()
    assert [n for n in checkpoints if n.startswith("slow@")] == []
    await first.stop()
    await store.close()
    await second_store.close()
