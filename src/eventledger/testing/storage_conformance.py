"""The storage conformance suites: what every backend's storage protocols must do, the same
way (see :mod:`eventledger.storage`).

One suite per protocol, and :class:`StorageConformance` with all six. A backend's test
module subclasses what it keeps and supplies one fixture, ``store_url``, that returns the
URL of a fresh, empty store; each test opens the store and closes it::

    class TestMyStorage(StorageConformance):
        @pytest.fixture
        def store_url(self, tmp_path: Path) -> str:
            return f"sqlite:///{tmp_path}/events.db"

- :class:`ReadSideConformance`: checkpoints, leases, dead letters, read-model
  generations and document collections;
- :class:`SqlTablesConformance`: SQL read models' tables; on a store without
  ``"sql_tables"`` in its capabilities each test checks that ``store.sql_tables()``
  raises :class:`~eventledger.UnsupportedFeature`, and stops;
- :class:`CommandLogConformance`: handled commands and idempotency keys;
- :class:`ProcessStorageConformance`: process-manager instances and deadlines;
- :class:`KeyStorageConformance`: the HTTP server's API keys;
- :class:`PersonalDataConformance`: the subjects' data keys (:mod:`eventledger.personal`);
- :class:`RetentionConformance`: soft delete, hard deletion with tombstones and retention
  (:mod:`eventledger.retention`).

Writes in a transaction are checked to vanish when it rolls back. Needs pytest,
pytest-asyncio and hypothesis (``pip install 'eventledger[test]'``).
"""

from __future__ import annotations

from eventledger.testing._command_log_conformance import CommandLogConformance
from eventledger.testing._key_conformance import KeyStorageConformance
from eventledger.testing._personal_conformance import PersonalDataConformance
from eventledger.testing._process_conformance import ProcessStorageConformance
from eventledger.testing._read_side_conformance import ReadSideConformance
from eventledger.testing._retention_conformance import RetentionConformance
from eventledger.testing._sql_tables_conformance import SqlTablesConformance

__all__ = [
    "CommandLogConformance",
    "KeyStorageConformance",
    "PersonalDataConformance",
    "ProcessStorageConformance",
    "ReadSideConformance",
    "RetentionConformance",
    "SqlTablesConformance",
    "StorageConformance",
]


class StorageConformance(
    ReadSideConformance,
    SqlTablesConformance,
    CommandLogConformance,
    ProcessStorageConformance,
    KeyStorageConformance,
    PersonalDataConformance,
    RetentionConformance,
):
    """Every storage suite: for a backend that keeps the read side, the command log,
    process managers, API keys, personal data keys and retention (SQL tables, or their refusal).
    Subclass it and provide ``store_url``."""
