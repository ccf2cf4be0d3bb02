import pytest

from eventledger.testing import EventStoreConformance, StorageConformance


class TestPostgresStore(EventStoreConformance):
    @pytest.fixture
    def store_url(self, postgres_schema_url: str) -> str:
        return postgres_schema_url


class TestPostgresStorage(StorageConformance):
    @pytest.fixture
    def store_url(self, postgres_schema_url: str) -> str:
        return postgres_schema_url
