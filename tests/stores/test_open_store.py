"""Opening stores from URLs, schema versions and migrations, per backend."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from eventledger import (
    InvalidInput,
    NewEvent,
    OperationalError,
    SchemaVersionError,
    open_store,
)
from eventledger.stores.memory import MemoryStore
from eventledger.stores.postgres import PostgresStore, split_url
from eventledger.stores.sqlite import SQLiteStore
from tests.postgres_urls import with_settings

MIGRATIONS = [
    (1, "events"),
    (2, "snapshots"),
    (3, "read_side"),
    (4, "commands"),
    (5, "process_managers"),
    (6, "api_keys"),
]
SQLITE_MIGRATIONS = [
    *MIGRATIONS,
    (7, "instance_pages"),
    (8, "personal_data"),
    (9, "key_expiry"),
    (10, "stream_retention"),
]
POSTGRES_MIGRATIONS = [
    *MIGRATIONS,
    (7, "writer_horizon"),
    (8, "json_payloads"),
    (9, "instance_pages"),
    (10, "personal_data"),
    (11, "key_expiry"),
    (12, "stream_retention"),
    (13, "correlation_order"),
]


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("events.db", "not a store URL"),
        ("mysql://localhost/db", "no store for the scheme 'mysql'"),
        ("sqlite://events.db", "three slashes"),
        ("sqlite:///:memory:", "use memory://"),
        ("sqlite:///events.db?journal=off", "unknown SQLite setting"),
        ("sqlite:///events.db?synchronous=off", "synchronous must be one of"),
        ("sqlite:///events.db?timeout=soon", "timeout must be a number"),
    ],
)
async def test_bad_store_urls_are_refused_with_the_reason(url: str, complaint: str) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        await open_store(url)


async def test_a_url_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidInput, match="must be a string"):
        await open_store(42)  # type: ignore[arg-type]


async def test_named_memory_stores_share_one_log_and_anonymous_ones_do_not() -> None:
    first = await open_store("memory://shared-test-log")
    second = await open_store("memory://shared-test-log")
    private = await open_store("memory://")
    await first.append("Order-1", [NewEvent("Placed", {})])
    assert await second.stream_version("Order-1") == 1
    assert await private.stream_version("Order-1") == 0
    assert isinstance(first, MemoryStore)


async def test_sqlite_relative_and_absolute_paths(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    relative = await open_store("sqlite:///relative.db")
    absolute = await open_store(f"sqlite:///{tmp_path}/absolute.db")
    try:
        assert isinstance(relative, SQLiteStore)
        assert (tmp_path / "relative.db").exists()
        assert (tmp_path / "absolute.db").exists()
        assert relative.url == "sqlite:///relative.db"
    finally:
        await relative.close()
        await absolute.close()


async def test_sqlite_file_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match="does not exist"):
        await open_store(f"sqlite:///{tmp_path}/missing/events.db")


async def test_sqlite_schema_is_created_once_and_recorded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db?synchronous=normal&timeout=5"
    for _ in range(2):
        store = await open_store(url)
        await store.append("Order-1", [NewEvent("Placed", {})])
        await store.close()
    with sqlite3.connect(tmp_path / "events.db") as conn:
        versions = conn.execute("SELECT version, name FROM eventledger_schema").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == SQLITE_MIGRATIONS
    assert mode == "wal"
    store = await open_store(url)
    assert await store.stream_version("Order-1") == 2
    await store.close()


async def test_sqlite_file_from_a_newer_eventledger_is_refused(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/events.db")
    await store.close()
    with sqlite3.connect(tmp_path / "events.db") as conn:
        conn.execute("INSERT INTO eventledger_schema VALUES (99, 'future', 0)")
    with pytest.raises(SchemaVersionError, match="schema version 99"):
        await open_store(f"sqlite:///{tmp_path}/events.db")


async def test_sqlite_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OperationalError, match=r"junk\.db"):
        await open_store(f"sqlite:///{tmp_path}/junk.db")


async def test_postgres_schema_is_created_once_and_recorded(postgres_schema_url: str) -> None:
    for _ in range(2):
        store = await open_store(postgres_schema_url)
        await store.append("Order-1", [NewEvent("Placed", {})])
        await store.close()
    dsn, settings = split_url(postgres_schema_url)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            f'SELECT version, name FROM "{settings["schema"]}".schema_migrations'
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == POSTGRES_MIGRATIONS


async def test_postgres_schema_from_a_newer_eventledger_is_refused(
    postgres_schema_url: str,
) -> None:
    store = await open_store(postgres_schema_url)
    await store.close()
    dsn, settings = split_url(postgres_schema_url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f'INSERT INTO "{settings["schema"]}".schema_migrations (version, name) VALUES (99, $1)',
            "future",
        )
    finally:
        await conn.close()
    with pytest.raises(SchemaVersionError, match="version 99"):
        await open_store(postgres_schema_url)


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"schema": "Bad-Name"}, "schema 'Bad-Name' is not valid"),
        ({"pool_max_size": "many"}, "pool_max_size must be an integer"),
        ({"pool_min_size": "5", "pool_max_size": "2"}, "pool sizes"),
    ],
)
async def test_bad_postgres_settings_are_refused(
    postgres_url: str, settings: dict[str, str], complaint: str
) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        await open_store(with_settings(postgres_url, **settings))


async def test_unreachable_postgres_is_an_operational_error_without_the_password() -> None:
    with pytest.raises(OperationalError, match="cannot connect") as caught:
        await open_store("postgresql://someone:secret@127.0.0.1:1/nothing")
    assert "secret" not in str(caught.value)


async def test_postgres_url_hides_the_password_and_keeps_settings(postgres_schema_url: str) -> None:
    store = await open_store(with_settings(postgres_schema_url, pool_max_size="3"))
    try:
        assert isinstance(store, PostgresStore)
        assert "pool_max_size=3" in store.url
        assert repr(store).startswith("<PostgresStore postgresql://")
    finally:
        await store.close()
