"""`eventledger relay` in a process of its own, killed -9 again and again in the middle of
its pages, then run to the end: the JetStream stream holds every event exactly once,
in the log's order (so in order within each stream)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from eventledger import EventStore, NewEvent
from tests.relay.conftest import Target, eventually, kill, messages_of, start_relay, text_of

ROUNDS = 6


async def test_a_relay_killed_mid_page_again_and_again_publishes_each_event_once_in_order(
    store: EventStore, shared_store_url: str, target: Target, tmp_path: Path
) -> None:
    for n in range(10):
        await store.append(f"Tick-{n}", [NewEvent("Ticked", {"n": i}) for i in range(300)])
    head = await store.head_position()
    read_side = store.read_side()
    log = tmp_path / "relay.log"

    async def checkpoint() -> int:
        return await read_side.get_checkpoint("nats") or 0

    killed_mid_way = 0
    for round_ in range(ROUNDS):
        reached = await checkpoint()
        process = await start_relay(shared_store_url, target, log)
        try:
            # It takes the lease once the killed one's lapsed (1 s), then publishes;
            # the kill lands at a moment that moves through its pages round by round.
            await eventually(lambda r=reached: _past(checkpoint, r), 30, f"round {round_}")
            await asyncio.sleep(0.01 + 0.03 * round_)
        finally:
            await kill(process)
        if await checkpoint() >= head:
            break
        killed_mid_way += 1
    assert killed_mid_way >= 3, f"only {killed_mid_way} kills landed before the end"

    survivor = await start_relay(shared_store_url, target, log)
    try:
        await eventually(lambda: _past(checkpoint, head - 1), 60, "the survivor catching up")
        survivor.send_signal(signal.SIGTERM)
        assert survivor.stdout is not None
        said = (await asyncio.wait_for(survivor.stdout.read(), 30)).decode()
        assert await asyncio.wait_for(survivor.wait(), 30) == 0, said + text_of(log)
    finally:
        if survivor.returncode is None:
            await kill(survivor)
    assert f"stopped at position {head} (0 behind)" in said, said

    events = [e async for e in store.read_all()]
    ids = [m.headers["Nats-Msg-Id"] for m in await messages_of(target)]
    assert len(ids) == len(set(ids)), "an event was published twice"
    assert ids == [str(e.id) for e in events], "events are missing or out of order"


async def _past(checkpoint: object, position: int) -> bool:
    assert callable(checkpoint)
    reached: int = await checkpoint()
    return reached > position
