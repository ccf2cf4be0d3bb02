"""Test helpers for eventledger users and backend authors.

- :func:`given`: given past events, when a domain method runs, then these events or
  this error (no store needed, no test framework needed);
- :class:`EventStoreConformance`: the shared suite every event store passes (needs
  pytest, pytest-asyncio and hypothesis: ``pip install 'eventledger[test]'``).
"""

from typing import TYPE_CHECKING, Any

from eventledger.testing.aggregates import Outcome, Scenario, given

if TYPE_CHECKING:
    from eventledger.testing.conformance import EventStoreConformance, StoreOpener

__all__ = ["EventStoreConformance", "Outcome", "Scenario", "StoreOpener", "given"]


def __getattr__(name: str) -> Any:
    # The conformance suite imports pytest and hypothesis; load it only when asked for.
    if name in ("EventStoreConformance", "StoreOpener"):
        from eventledger.testing import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module 'eventledger.testing' has no attribute {name!r}")
