from pathlib import Path

import pytest

from eventledger.testing import EventStoreConformance


class TestSQLiteStore(EventStoreConformance):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/events.db"
