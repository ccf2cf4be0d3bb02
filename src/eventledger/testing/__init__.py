"""Test helpers for eventledger users and backend authors.

- :func:`given`: given past events, when a domain method runs, then these events or
  this error (no store needed, no test framework needed);
- :class:`EventStoreConformance`: the shared suite every event store passes;
- :class:`StorageConformance`: the shared suites of the storage protocols
  (:mod:`eventledger.storage`), one per protocol: :class:`ReadSideConformance`,
  :class:`SqlTablesConformance`, :class:`CommandLogConformance`,
  :class:`ProcessStorageConformance`, :class:`KeyStorageConformance`,
  :class:`PersonalDataConformance` and :class:`RetentionConformance`.

The suites need pytest, pytest-asyncio and hypothesis (``pip install 'eventledger[test]'``).
"""

from typing import TYPE_CHECKING, Any

from eventledger.testing.aggregates import Outcome, Scenario, given

if TYPE_CHECKING:
    from eventledger.testing.conformance import EventStoreConformance, StoreOpener
    from eventledger.testing.storage_conformance import (
        CommandLogConformance,
        KeyStorageConformance,
        PersonalDataConformance,
        ProcessStorageConformance,
        ReadSideConformance,
        RetentionConformance,
        SqlTablesConformance,
        StorageConformance,
    )

__all__ = [
    "CommandLogConformance",
    "EventStoreConformance",
    "KeyStorageConformance",
    "Outcome",
    "PersonalDataConformance",
    "ProcessStorageConformance",
    "ReadSideConformance",
    "RetentionConformance",
    "Scenario",
    "SqlTablesConformance",
    "StorageConformance",
    "StoreOpener",
    "given",
]

_STORAGE_SUITES = (
    "CommandLogConformance",
    "KeyStorageConformance",
    "PersonalDataConformance",
    "ProcessStorageConformance",
    "ReadSideConformance",
    "RetentionConformance",
    "SqlTablesConformance",
    "StorageConformance",
)


def __getattr__(name: str) -> Any:
    # The conformance suites import pytest and hypothesis; load them only when asked for.
    if name in ("EventStoreConformance", "StoreOpener"):
        from eventledger.testing import conformance

        return getattr(conformance, name)
    if name in _STORAGE_SUITES:
        from eventledger.testing import storage_conformance

        return getattr(storage_conformance, name)
    raise AttributeError(f"module 'eventledger.testing' has no attribute {name!r}")
