"""Rebuilding and resetting read models, as operations of their subscription.

A rebuild replays the log into a fresh generation of the read model (its own
tables and checkpoint, ``name@generation``) that follows the log under the
live one's lease, while queries keep reading the old generation; once the copy
has caught up with the live position, one transaction points the views at the
new generation, moves the checkpoint and drops the old tables. A copy that
fails at an event is dropped and the rebuild reports the error; the live read
model never stopped. A reset empties the read model in place and starts it
again from the beginning.

Both run in the subscription's own task (:meth:`Subscription.submit`), between
batches.
"""

from __future__ import annotations

import asyncio
import logging

from eventledger.errors import InvalidInput, ProjectionFailed
from eventledger.projections.base import Projection, RunScope
from eventledger.projections.consumers import ProjectionConsumer, projection_of
from eventledger.subscriptions import CatchUpCopy, HandlerFailed, Subscription

__all__ = ["copy_name", "reset", "resume_interrupted", "start_rebuild"]

log = logging.getLogger("eventledger.projections")


def _consumer(subscription: Subscription) -> ProjectionConsumer:
    consumer = projection_of(subscription.consumer)
    if not consumer.projection.rebuildable:
        raise InvalidInput(
            f"{subscription.name} is a process manager: a rebuild or reset would send its"
            " commands again"
        )
    return consumer


def copy_name(name: str, generation: int) -> str:
    """The checkpoint of the rebuild of `name` into `generation`."""
    return f"{name}@{generation}"


async def start_rebuild(
    subscription: Subscription, scope: RunScope, finished: asyncio.Future[int]
) -> None:
    """Start rebuilding into the next generation; `finished` gets the generation when
    queries see it (or fails with :class:`~eventledger.ProjectionFailed`)."""
    live = _consumer(subscription)
    if subscription.copy is not None:
        raise InvalidInput(f"{subscription.name} is rebuilding already")
    generation = live.generation + 1
    fresh: Projection = type(live.projection)()
    if subscription.durable:
        async with scope.store.transaction() as tx:
            await fresh.drop(tx, scope, generation)
            await fresh.create(tx, scope, generation)
            await scope.read_side.set_checkpoint(tx, copy_name(subscription.name, generation), 0)
    total = await scope.store.count_events()
    _follow(subscription, scope, fresh, generation, finished, 0, total, total)
    log.info("%s: rebuilding into generation %d (%d events)", subscription.name, generation, total)


def _follow(
    subscription: Subscription,
    scope: RunScope,
    fresh: Projection,
    generation: int,
    finished: asyncio.Future[int],
    position: int,
    total: int,
    ahead: int,
) -> None:
    """Let the subscription drive the copy from `position` to the live position."""

    async def caught_up(copy: CatchUpCopy) -> None:
        await _swap(subscription, scope, copy)
        if not finished.done():
            finished.set_result(copy.generation)

    async def failed(copy: CatchUpCopy, failure: HandlerFailed) -> None:
        message = f"rebuild of {subscription.name} failed at an event: {failure.text}"
        subscription.last_error = message
        if subscription.durable:
            async with scope.store.transaction() as tx:
                await fresh.drop(tx, scope, generation)
                await scope.read_side.delete_checkpoint(
                    tx, copy_name(subscription.name, generation)
                )
        if not finished.done():
            finished.set_exception(ProjectionFailed(message))

    subscription.copy = CatchUpCopy(
        fresh.consumer(scope, generation),
        copy_name(subscription.name, generation),
        generation,
        caught_up,
        failed,
        position=position,
        done=total - ahead,
        total=total,
    )


async def resume_interrupted(subscription: Subscription, scope: RunScope) -> None:
    """Pick up a rebuild that a process dying left half done: go on with the copy of the
    next generation from its checkpoint; drop any other copy left behind."""
    consumer = projection_of(subscription.consumer)
    if not subscription.durable or not consumer.projection.rebuildable:
        return
    prefix = f"{subscription.name}@"
    leftovers = {
        int(name[len(prefix) :]): position
        for name, position in (await scope.read_side.checkpoints()).items()
        if name.startswith(prefix) and name[len(prefix) :].isdigit()
    }
    for generation, position in sorted(leftovers.items()):
        copy = type(consumer.projection)()
        if generation == consumer.generation + 1 and subscription.copy is None:
            total = await scope.store.count_events()
            ahead = await scope.store.count_events(after=position)
            finished: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            finished.add_done_callback(_nobody_waits)
            _follow(subscription, scope, copy, generation, finished, position, total, ahead)
            log.info(
                "%s: resuming the rebuild into generation %d at position %d",
                subscription.name,
                generation,
                position,
            )
            continue
        async with scope.store.transaction() as tx:
            await copy.drop(tx, scope, generation)
            await scope.read_side.delete_checkpoint(tx, copy_name(subscription.name, generation))
        log.info("%s: dropped the unfinished copy of generation %d", subscription.name, generation)


def _nobody_waits(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()


async def _swap(subscription: Subscription, scope: RunScope, copy: CatchUpCopy) -> None:
    live = _consumer(subscription)
    fresh = projection_of(copy.consumer)
    if subscription.durable:
        async with scope.store.transaction() as tx:
            await subscription.hold_lease(tx)
            await scope.changing(tx, live.projection)
            await fresh.projection.point_views(tx, scope, copy.generation)
            await scope.read_side.set_generation(tx, subscription.name, copy.generation)
            await scope.read_side.set_checkpoint(tx, subscription.name, copy.position)
            await scope.read_side.delete_checkpoint(tx, copy.checkpoint_name)
            await live.projection.drop(tx, scope, live.generation)
        subscription.position = copy.position
    else:
        subscription.position = max(subscription.position, copy.position)
    fresh.generation = copy.generation
    subscription.consumer = fresh
    log.info("%s: now serving generation %d", subscription.name, copy.generation)


async def reset(subscription: Subscription, scope: RunScope) -> None:
    """Empty the read model and start it again from the beginning (queries see it fill)."""
    consumer = _consumer(subscription)
    if not subscription.durable:
        await consumer.activate(None)
    else:
        projection, generation = consumer.projection, consumer.generation
        async with scope.store.transaction() as tx:
            await subscription.hold_lease(tx)
            await scope.changing(tx, projection)
            await projection.drop(tx, scope, generation)
            await projection.create(tx, scope, generation)
            await projection.point_views(tx, scope, generation)
            await scope.read_side.set_checkpoint(tx, subscription.name, 0)
    subscription.position = 0
    subscription.resume()
