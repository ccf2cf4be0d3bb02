import uuid

import pytest

from eventledger.testing import EventStoreConformance


class TestMemoryStore(EventStoreConformance):
    @pytest.fixture
    def store_url(self) -> str:
        return f"memory://{uuid.uuid4().hex}"
