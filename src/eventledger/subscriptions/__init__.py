"""Subscriptions: follow the log from a checkpoint and hand it, batch by batch, to a consumer.

A :class:`Subscription` runs one :class:`Consumer` in a task of its own: it reads
a page of the log after its checkpoint, keeps the events the consumer handles,
and commits what the consumer did together with the new checkpoint, in one
transaction of the store, so that no event is applied twice or missed whenever
the process dies. At the end of the log it waits for appends (a wake-up from the
store, or a bounded poll). Projections, process managers and relays are
consumers; what differs between them is their :class:`Batch`.

- **Leases**: a durable consumer runs in one process at a time. The lease is
  taken before the subscription becomes active, renewed in every batch's
  transaction (a holder that lost it cannot commit), and taken over by another
  process within ``lease_ttl`` seconds after its holder dies.
- **Failures**: a batch that fails at an event commits the events before it,
  then retries that event alone with the consumer's :class:`~eventledger.RetryPolicy`;
  after the last attempt it is parked as a dead letter, and the policy says
  whether the subscription stops there (``failed``, until the letter is retried
  or skipped) or goes on.
- **Catch-up copies**: a second consumer can follow the log under the same lease
  with a checkpoint of its own until it reaches the live position, for rebuilds
  that swap a fresh read model in without downtime.
- **Operations** (:meth:`Subscription.submit`) run in the subscription's own
  task, between batches, so they never race a batch.

Consumers that are not durable (in-memory read models) keep no checkpoint and
take no lease: they start from the beginning of the log in every process.
"""

from eventledger.subscriptions.consumer import (
    Batch,
    CatchUpCopy,
    Consumer,
    HandlerFailed,
    RebuildProgress,
    SubscriptionSettings,
    SubscriptionStatus,
)
from eventledger.subscriptions.subscription import Subscription

__all__ = [
    "Batch",
    "CatchUpCopy",
    "Consumer",
    "HandlerFailed",
    "RebuildProgress",
    "Subscription",
    "SubscriptionSettings",
    "SubscriptionStatus",
]
