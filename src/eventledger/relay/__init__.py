"""The outbox relay: hand the log to NATS JetStream, and read it back in other services
(``pip install 'eventledger[nats]'``; the whole story is in docs/relay.md).

- :class:`NatsRelay` publishes every event (or those of some categories and types) to
  a JetStream stream, subject ``eventledger.<category>.<type>``, ``Nats-Msg-Id`` = the
  event id, the rest of the event in headers (:mod:`eventledger.relay.messages`).
- :class:`RelayRunner` runs relays as checkpointed, leased subscriptions: a page's
  checkpoint commits after JetStream acknowledged every message of it, one process
  at a time runs a relay name, and status shows position, lag and ``stalled`` (with
  the error) while NATS is down. ``eventledger relay --to nats://...`` runs one.
- :func:`consume` reads the stream with a durable pull consumer and gives
  :class:`~eventledger.RecordedEvent` objects, acked explicitly.
"""

try:
    import nats as _nats  # noqa: F401  # the extra is installed
except ImportError as error:  # pragma: no cover - the test extra installs it
    raise ImportError(
        "eventledger.relay needs the NATS client: pip install 'eventledger[nats]'"
    ) from error

from eventledger.relay.consume import RelayedEvents, consume
from eventledger.relay.messages import event_subject, subject_token, token_text
from eventledger.relay.nats import DEFAULT_STREAM, DEFAULT_URL, NatsRelay, PersonalData
from eventledger.relay.runner import RelayRunner

__all__ = [
    "DEFAULT_STREAM",
    "DEFAULT_URL",
    "NatsRelay",
    "PersonalData",
    "RelayRunner",
    "RelayedEvents",
    "consume",
    "event_subject",
    "subject_token",
    "token_text",
]
