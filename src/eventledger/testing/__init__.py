"""Test helpers for eventledger users and backend authors (needs the ``test`` extra).

- :class:`EventStoreConformance`: the shared suite every event store passes.
"""

from eventledger.testing.conformance import EventStoreConformance, StoreOpener

__all__ = ["EventStoreConformance", "StoreOpener"]
