"""Running relays: one :class:`~eventledger.subscriptions.Subscription` each, with status,
waits and the dead-letter operations (see :mod:`eventledger.relay`).

A relay is a durable consumer like a stored projection: its checkpoint is in the
store's read side, so ``eventledger projections status`` and ``eventledger top`` show
its position, lag and the process that runs it, wherever it runs.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable

from eventledger.errors import InvalidInput, LeaseLost
from eventledger.relay.nats import NatsRelay
from eventledger.storage import DeadLetter
from eventledger.stores.base import EventStore
from eventledger.subscriptions import (
    Consumer,
    Subscription,
    SubscriptionSettings,
    SubscriptionStatus,
)

__all__ = ["RelayRunner"]


class RelayRunner:
    """Runs relays (durable consumers that hand events to another system, such as
    :class:`~eventledger.relay.NatsRelay`) against one store until stopped.

    Each relay takes its lease before it publishes; another runner with the same relay
    name waits in standby and takes over within `lease_ttl` seconds after this one
    dies. `poll_interval` bounds the wait for appends made by other processes (and is
    the step of the backoff while the relay's target is down: at most 30 s).
    """

    def __init__(
        self,
        store: EventStore,
        relays: Iterable[Consumer],
        *,
        batch_size: int = 500,
        lease_ttl: float = 5.0,
        poll_interval: float = 1.0,
        owner: str | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInput(f"batch_size is an int >= 1, not {batch_size!r}")
        store.require("read_side")
        self.store = store
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.settings = SubscriptionSettings(self.owner, batch_size, lease_ttl, poll_interval)
        self._read_side = store.read_side()
        self._subscriptions: dict[str, Subscription] = {}
        for relay in relays:
            if not relay.durable:
                raise InvalidInput(f"{relay.name}: a relay keeps a checkpoint (durable = True)")
            if relay.name in self._subscriptions:
                raise InvalidInput(f"two relays are named {relay.name!r}")
            self._subscriptions[relay.name] = Subscription(
                store, self._read_side, relay, self.settings
            )
            if isinstance(relay, NatsRelay):
                relay.lease_guard = self._guard(relay.name)
                relay.lease_guard_after = lease_ttl / 3

    def _guard(self, name: str) -> Callable[[], Awaitable[None]]:
        async def hold() -> None:
            settings = self.settings
            if not await self._read_side.acquire_lease(name, settings.owner, settings.lease_ttl):
                raise LeaseLost(f"another process took {name} over")

        return hold

    async def start(self) -> None:
        for subscription in self._subscriptions.values():
            subscription.start()

    async def stop(self) -> None:
        """Stop after the pages in flight, release the leases and close the relays'
        connections."""
        await asyncio.gather(*(s.stop() for s in self._subscriptions.values()))
        for subscription in self._subscriptions.values():
            close = getattr(subscription.consumer, "close", None)
            if close is not None:
                await close()

    async def __aenter__(self) -> RelayRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def names(self) -> list[str]:
        return list(self._subscriptions)

    def subscription(self, name: str) -> Subscription:
        try:
            return self._subscriptions[name]
        except KeyError:
            known = ", ".join(self._subscriptions) or "none"
            raise InvalidInput(f"no relay named {name!r} here; known: {known}") from None

    def get(self, name: str) -> Consumer:
        """The relay object named `name`."""
        return self.subscription(name).consumer

    async def status(self, name: str | None = None) -> list[SubscriptionStatus]:
        """Each relay's state, position, lag (events and seconds) and last error: the
        status projections report (``stalled`` with the error while NATS is down,
        ``standby`` while another process runs it)."""
        chosen = [self.subscription(name)] if name else list(self._subscriptions.values())
        horizon = await self.store.horizon()
        return [await s.status(1, horizon) for s in chosen]

    async def wait_until(self, name: str, position: int, timeout: float = 10.0) -> None:
        """Wait until relay `name` has handed on everything up to `position`.
        :class:`~eventledger.ProjectionTimeout` after `timeout` seconds,
        :class:`~eventledger.ProjectionFailed` at once if it stopped at a parked event."""
        await self.subscription(name).wait_until(position, timeout)

    async def dead_letters(self, name: str) -> list[DeadLetter]:
        """The events relay `name` parked (too large for the target, say), oldest first."""
        self.subscription(name)
        return await self._read_side.dead_letters(name, "parked")

    async def retry(self, name: str, letter_id: int) -> None:
        """Hand a parked event on again (after a fix); a relay stopped at it goes on."""
        subscription = self.subscription(name)
        await subscription.submit(lambda: subscription.retry_letter(letter_id))

    async def skip(self, name: str, letter_id: int) -> None:
        """Give up on a parked event: it is never handed on, and a relay stopped at it
        goes on after it."""
        subscription = self.subscription(name)
        await subscription.submit(lambda: subscription.skip_letter(letter_id))
