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

import asyncpg
import pytest
import pytest_asyncio

from tests.postgres_urls import with_settings

ENV_VAR = "EVENTLEDGER_TEST_DATABASE_URL"


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
