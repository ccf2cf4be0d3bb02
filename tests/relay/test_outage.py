"""NATS down, then back: the relay waits (status stalled, with the error), never skips
or parks an event because of it, and catches up when NATS returns. Against a
throwaway nats-server on a free loopback port that the test starts, kills and restarts."""

from __future__ import annotations

import signal
from pathlib import Path

from eventledger import EventStore, NewEvent
from eventledger.relay import RelayRunner
from eventledger.subscriptions import SubscriptionStatus
from tests.relay.conftest import NatsServer, eventually, messages_of, new_target


async def test_the_relay_waits_for_nats_and_catches_up_without_losing_an_event(
    store: EventStore, tmp_path: Path
) -> None:
    server = NatsServer(tmp_path / "jetstream")
    target = new_target(server.url)
    for n in range(10):
        await store.append(f"Tick-{n}", [NewEvent("Ticked", {"n": i}) for i in range(100)])
    runner = RelayRunner(
        store,
        [target.relay(ack_timeout=2.0, connect_timeout=1.0)],
        batch_size=20,
        lease_ttl=2.0,
        poll_interval=0.1,
    )

    async def status() -> SubscriptionStatus:
        (found,) = await runner.status()
        return found

    async def stalled() -> SubscriptionStatus | None:
        found = await status()
        return found if found.state == "stalled" else None

    try:
        async with runner:
            # 1. NATS is not there when the relay starts: it waits and says why.
            waiting = await eventually(stalled, 20, "stalled while NATS is down")
            assert "cannot reach NATS" in (waiting.last_error or "")
            assert (waiting.position, waiting.events_behind) == (0, 1000)

            # 2. NATS starts: the relay catches up.
            server.start()
            head = await store.head_position()
            await runner.wait_until("nats", head, timeout=60)

            # 3. More events; NATS is killed while the relay is in the middle of them.
            for n in range(10):
                await store.append(
                    f"Tick-{n}", [NewEvent("Ticked", {"n": 100 + i}) for i in range(200)]
                )

            async def moving() -> bool:
                return (await status()).position > head

            await eventually(moving, 30, "relaying the second lot")
            server.stop(signal.SIGKILL)
            down = await eventually(stalled, 30, "stalled after NATS was killed")
            position_while_down = down.position
            assert (await status()).events_behind > 0

            # 4. Nothing moves while it is down, nothing is parked.
            more = await store.append("Tick-0", [NewEvent("Ticked", {"n": 300})])
            after_wait = await eventually(stalled, 5, "still stalled")
            assert after_wait.position == position_while_down
            assert await store.read_side().dead_letters("nats", "parked") == []

            # 5. NATS is back (same JetStream folder): the relay catches up.
            server.start()
            await runner.wait_until("nats", more.position, timeout=90)
            back = await status()
            assert (back.state, back.events_behind) == ("running", 0)
        events = [e async for e in store.read_all()]
        found = await messages_of(target)
        ids = [m.headers["Nats-Msg-Id"] for m in found]
        assert len(ids) == len(set(ids)) == len(events) == 3001, "an event is missing or twice"
        assert ids == [str(e.id) for e in events], "out of the log's order"
        assert await store.read_side().dead_letters("nats", "parked") == []
    finally:
        server.stop()


async def test_a_relay_whose_lease_lapsed_while_nats_was_away_publishes_nothing_more(
    store: EventStore, tmp_path: Path
) -> None:
    server = NatsServer(tmp_path / "jetstream")
    target = new_target(server.url)
    server.start()
    await store.append("Tick-1", [NewEvent("Ticked", {"n": i}) for i in range(50)])
    settings = {"batch_size": 10, "lease_ttl": 1.0, "poll_interval": 0.1}
    first_relay = target.relay(ack_timeout=1.0, connect_timeout=1.0)
    second_relay = target.relay(ack_timeout=1.0, connect_timeout=1.0)
    first = RelayRunner(store, [first_relay], owner="first", **settings)  # type: ignore[arg-type]
    second = RelayRunner(store, [second_relay], owner="second", **settings)  # type: ignore[arg-type]
    try:
        async with first:
            await first.wait_until("nats", await store.head_position(), timeout=30)
            server.stop()  # the first relay stalls; its lease lapses meanwhile

            async def stalled() -> bool:
                (status,) = await first.status()
                return status.state == "stalled"

            await eventually(stalled, 30, "the first relay stalled")
            more = await store.append(
                "Tick-1", [NewEvent("Ticked", {"n": 50 + i}) for i in range(50)]
            )
            async with second:  # takes the lapsed lease, and waits for NATS too

                async def taken_over() -> bool:
                    lease = await store.read_side().lease("nats")
                    return lease is not None and lease.owner == "second"

                await eventually(taken_over, 30, "the second relay taking the lease")
                server.start()
                await second.wait_until("nats", more.position, timeout=60)

                async def standing_by() -> bool:
                    (status,) = await first.status()
                    return status.state == "standby"

                await eventually(standing_by, 30, "the first relay finding it lost the lease")
        assert first_relay.published == 50
        assert first_relay.duplicates == 0  # it sent nothing once it had lost the lease
        assert second_relay.published == 50
        events = [e async for e in store.read_all()]
        ids = [m.headers["Nats-Msg-Id"] for m in await messages_of(target)]
        assert ids == [str(e.id) for e in events]
    finally:
        server.stop()
