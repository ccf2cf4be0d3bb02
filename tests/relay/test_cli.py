"""`eventledger relay` as a program: it says what it does, stops cleanly on SIGTERM,
exits 1 at an event it had to park, and `--retry-parked` publishes it after a fix."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import nats
from nats.js.api import StreamConfig

from eventledger import EventStore, NewEvent
from tests.relay.conftest import Target, kill, messages_of, start_relay, text_of


async def output_of(process: asyncio.subprocess.Process) -> tuple[int, str]:
    assert process.stdout is not None
    try:
        said = (await asyncio.wait_for(process.stdout.read(), 60)).decode()
        return await asyncio.wait_for(process.wait(), 30), said
    finally:
        if process.returncode is None:
            await kill(process)


async def test_a_parked_event_stops_the_command_and_retry_parked_publishes_it_after_a_fix(
    store: EventStore, shared_store_url: str, target: Target, tmp_path: Path
) -> None:
    client = await nats.connect(target.url)
    js = client.jetstream()
    config = StreamConfig(name=target.stream, subjects=[f"{target.prefix}.>"], max_msg_size=4000)
    await js.add_stream(config)
    try:
        await store.append("Blob-1", [NewEvent("Small", {"n": 1})])
        await store.append("Blob-1", [NewEvent("Large", {"text": "x" * 5000})])
        last = await store.append("Blob-1", [NewEvent("Small", {"n": 2})])
        log = tmp_path / "relay.log"

        code, said = await output_of(await start_relay(shared_store_url, target, log))
        assert code == 1, said + text_of(log)
        assert "stopped at a parked event" in said
        assert f"max_msg_size of stream {target.stream}" in said
        assert "--retry-parked" in text_of(log)
        assert [m.headers["Eventledger-Type"] for m in await messages_of(target)] == ["Small"]

        config.max_msg_size = -1  # the fix
        await js.update_stream(config)
        process = await start_relay(shared_store_url, target, log, "--retry-parked")
        try:
            for _ in range(600):
                if (await store.read_side().get_checkpoint("nats") or 0) >= last.position:
                    break
                await asyncio.sleep(0.05)
        finally:
            process.send_signal(signal.SIGTERM)
        code, said = await output_of(process)
        assert code == 0, said + text_of(log)
        assert "published parked event" in said
        assert f"stopped at position {last.position} (0 behind)" in said
    finally:
        await client.close()
    assert [m.headers["Eventledger-Type"] for m in await messages_of(target)] == [
        "Small",
        "Large",
        "Small",
    ]
    assert await store.read_side().dead_letters("nats", "parked") == []
