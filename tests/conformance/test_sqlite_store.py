from pathlib import Path

import pytest

from eventledger.testing import EventStoreConformance, StorageConformance


class TestSQLiteStore(EventStoreConformance):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/events.db"


class TestSQLiteStorage(StorageConformance):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/events.db"
