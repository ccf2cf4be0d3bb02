import uuid

import pytest

from eventledger.testing import EventStoreConformance, StorageConformance


class TestMemoryStore(EventStoreConformance):
    @pytest.fixture
    def store_url(self) -> str:
        return f"memory://{uuid.uuid4().hex}"


class TestMemoryStorage(StorageConformance):
    @pytest.fixture
    def store_url(self) -> str:
        return f"memory://{uuid.uuid4().hex}"
