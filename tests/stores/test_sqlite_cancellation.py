"""SQLite under cancellation, other loops and other processes: a transaction given up on
while it waits for the file never keeps it locked, every write goes through one lock,
and that lock serves any event loop."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from eventledger import NewEvent, RecordedEvent, Snapshot, open_store
from eventledger.projections import Context, DocumentProjection, ProjectionRunner, on


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


def _hold_the_write_lock(path: Path) -> subprocess.Popen[str]:
    """Another process that holds the file's write lock until its stdin closes."""
    code = (
        "import sqlite3, sys\n"
        f"conn = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "conn.execute('BEGIN IMMEDIATE')\n"
        "print('holding', flush=True)\n"
        "sys.stdin.read()\n"
        "conn.execute('ROLLBACK')\n"
    )
    holder = subprocess.Popen(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    return holder


async def _until(condition: object, seconds: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_a_transaction_cancelled_while_it_waits_for_the_file_leaves_it_free(
    db: Path,
) -> None:
    store = await open_store(f"sqlite:///{db}?timeout=10")
    try:
        await store.append("Order-1", [NewEvent("Placed", {})])
        holder = _hold_the_write_lock(db)

        async def write() -> None:
            async with store.transaction() as tx:
                await tx.append("Order-2", [NewEvent("Placed", {})])

        waiting = asyncio.ensure_future(write())
        lock = store._write_lock  # type: ignore[attr-defined]
        await _until(lambda: lock.locked)  # BEGIN IMMEDIATE is on its way, and waits
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        holder.communicate("")  # the other process lets go; our BEGIN may run now
        # Whatever BEGIN did was undone: this store and every other process can write.
        assert (await store.append("Order-3", [NewEvent("Placed", {})])).version == 1
        other = await open_store(f"sqlite:///{db}?timeout=5")
        try:
            assert (await other.append("Order-4", [NewEvent("Placed", {})])).version == 1
        finally:
            await other.close()
        assert await store.stream_version("Order-2") == 0
    finally:
        await store.close()


async def test_a_snapshot_never_joins_another_tasks_transaction(db: Path) -> None:
    store = await open_store(f"sqlite:///{db}")
    try:
        await store.append("Stack-1", [NewEvent("Pushed", {})])
        inside = asyncio.Event()
        give_up = asyncio.Event()

        async def doomed() -> None:
            async with store.transaction() as tx:
                await tx.append("Stack-2", [NewEvent("Pushed", {})])
                inside.set()
                await give_up.wait()
                raise RuntimeError("rolled back")

        transaction = asyncio.ensure_future(doomed())
        await inside.wait()
        saving = asyncio.ensure_future(
            store.save_snapshot(Snapshot("Stack-1", 1, "Stack", "f1", {"depth": 1}))
        )
        await asyncio.sleep(0)  # it waits for the lock, not inside the transaction
        give_up.set()
        with pytest.raises(RuntimeError):
            await transaction
        await saving
        kept = await store.load_snapshot("Stack-1")
        assert kept is not None
        assert kept.state == {"depth": 1}
        assert await store.stream_version("Stack-2") == 0
    finally:
        await store.close()


async def test_the_write_lock_serves_tasks_of_other_event_loops(db: Path) -> None:
    store = await open_store(f"sqlite:///{db}")
    errors: list[BaseException] = []

    def in_another_loop(n: int) -> None:
        async def write() -> None:
            for i in range(20):
                async with store.transaction() as tx:
                    await tx.append(f"Thread-{n}-{i}", [NewEvent("Placed", {})])

        try:
            asyncio.run(write())
        except BaseException as error:  # reported below
            errors.append(error)

    try:
        threads = [threading.Thread(target=in_another_loop, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for i in range(20):
            async with store.transaction() as tx:
                await tx.append(f"Main-{i}", [NewEvent("Placed", {})])
        for thread in threads:
            await asyncio.to_thread(thread.join, 30)
        assert errors == []
        assert len([e async for e in store.read_all()]) == 60
    finally:
        await store.close()


class Waiting(DocumentProjection):
    """A handler that waits for the test before it writes its document."""

    name = "waiting"
    categories = ("Tick",)
    entered: ClassVar[asyncio.Event]
    go_on: ClassVar[asyncio.Event]

    @on("Ticked")
    async def ticked(self, event: RecordedEvent, context: Context) -> None:
        type(self).entered.set()
        await type(self).go_on.wait()
        assert context.docs is not None
        await context.docs.put(context.aggregate_id, {"seen": True})


async def test_a_document_batch_holds_the_file_only_while_it_writes(db: Path) -> None:
    Waiting.entered, Waiting.go_on = asyncio.Event(), asyncio.Event()
    store = await open_store(f"sqlite:///{db}")
    other = await open_store(f"sqlite:///{db}?timeout=1")
    try:
        result = await store.append("Tick-1", [NewEvent("Ticked", {})])
        async with ProjectionRunner(store, [Waiting()], poll_interval=0.05) as runner:
            await Waiting.entered.wait()
            # The handler runs; the file is free for everyone else's writes.
            assert (await other.append("Order-1", [NewEvent("Placed", {})])).version == 1
            Waiting.go_on.set()
            await runner.wait_until("waiting", result.position, timeout=10)
            assert await runner.documents("waiting").get("1") == {"seen": True}
    finally:
        await other.close()
        await store.close()
