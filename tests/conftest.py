"""Shared fixtures: a real PostgreSQL server for every test that needs one.

The server is `EVENTLEDGER_TEST_DATABASE_URL` when it is set (CI sets it to the
machine's PostgreSQL); otherwise the suite starts a throwaway server from the
`pgserver` package for the session. PostgreSQL tests are never skipped.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from eventledger import EventStore, open_store
from tests.postgres_urls import with_settings

ENV_VAR = "EVENTLEDGER_TEST_DATABASE_URL"

# Personal values are sealed under this key-encryption key in every test, and in the
# servers and commands the tests start (they inherit the environment).
os.environ.setdefault(
    "EVENTLEDGER_KEY_ENCRYPTION_KEY", "dGVzdHMtb25seS1rZXktZW5jcnlwdGlvbi1rZXkhISE="
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    configured = os.environ.get(ENV_VAR)
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime folder; a missing XDG_RUNTIME_DIR only warns.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

    with tempfile.TemporaryDirectory(prefix="eventledger-pg-") as folder:
        server = get_server(folder, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@pytest_asyncio.fixture
async def postgres_schema_url(postgres_url: str) -> AsyncIterator[str]:
    """A URL for a fresh schema of its own, dropped after the test."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    yield with_settings(postgres_url, schema=schema)
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh store of each kind in turn."""
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def shared_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store several processes can open at once: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest_asyncio.fixture
async def any_store(any_store_url: str) -> AsyncIterator[EventStore]:
    store = await open_store(any_store_url)
    yield store
    await store.close()
