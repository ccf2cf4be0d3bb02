import pytest

from eventledger.testing import EventStoreConformance


class TestPostgresStore(EventStoreConformance):
    @pytest.fixture
    def store_url(self, postgres_schema_url: str) -> str:
        return postgres_schema_url
