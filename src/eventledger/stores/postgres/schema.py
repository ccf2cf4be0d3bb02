"""The store's schema: migrations, the writers' marker, and the repair that keeps new
positions above old ones after a restore into a new cluster."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from eventledger.errors import SchemaVersionError
from eventledger.stores._migrations import load_migrations

if TYPE_CHECKING:
    import asyncpg

__all__ = ["Marker", "check_version", "migrate", "positions_need_repair", "repair_positions"]


class Marker:
    """The writers' marker of one schema: the events table's ROW EXCLUSIVE lock, and
    the transaction-local setting (the flag) that says it was taken while the
    transaction had no id (see docs/ordering.md)."""

    def __init__(self, schema: str) -> None:
        self.flag = f"eventledger.writer_{zlib.crc32(schema.encode())}"

    def apply(self, sql: str) -> str:
        """A migration's SQL with the marker's placeholders filled in."""
        return sql.replace("__FLAG__", self.flag)


def _lock_sql() -> str:
    return "SELECT pg_advisory_xact_lock(hashtext('eventledger migrate ' || $1))"


async def migrate(conn: asyncpg.Connection, schema: str) -> None:
    """Bring the schema to the latest version, one migration a transaction, and repair
    positions after a restore."""
    q = f'"{schema}"'
    marker = Marker(schema)
    migrations = load_migrations(__package__)
    for migration in migrations:
        async with conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = 0")
            await conn.execute(_lock_sql(), schema)
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {q}.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            current = await conn.fetchval(
                f"SELECT coalesce(max(version), 0) FROM {q}.schema_migrations"
            )
            _refuse_newer(schema, current, len(migrations))
            if current < migration.version:
                await conn.execute(marker.apply(migration.sql.replace("__SCHEMA__", q)))
                await conn.execute(
                    f"INSERT INTO {q}.schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
    await repair_positions(conn, schema)


async def check_version(conn: asyncpg.Connection, schema: str) -> None:
    """For a read-only store: the schema must be there, at the version this code knows."""
    q = f'"{schema}"'
    known = len(load_migrations(__package__))
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{q}.schema_migrations")
    current = (
        await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {q}.schema_migrations")
        if exists
        else 0
    )
    _refuse_newer(schema, current, known)
    if current < known:
        raise SchemaVersionError(
            f"schema {schema} is at version {current}, but this eventledger needs {known};"
            " a read-only store does not migrate: open it once read-write (on the primary)"
        )


def _refuse_newer(schema: str, current: int, known: int) -> None:
    if current > known:
        raise SchemaVersionError(
            f"schema {schema} is at version {current}, but this eventledger knows only up to"
            f" {known}; upgrade eventledger"
        )


def _compare_sql(q: str) -> str:
    # The next transaction id is at least the snapshot's xmax: positions it will give
    # start at (xmax + offset) << 20.
    return (
        f"SELECT (SELECT max(position) FROM {q}.events)"
        " >= ((pg_snapshot_xmax(pg_current_snapshot())::text::bigint + o.xid_offset) << 20)"
        f" FROM {q}.position_offset o"
    )


async def positions_need_repair(conn: asyncpg.Connection, schema: str) -> bool:
    """Whether new transactions would give positions at or below the highest stored one
    (the log was restored into a cluster whose transaction ids started again)."""
    return bool(await conn.fetchval(_compare_sql(f'"{schema}"')))


async def repair_positions(conn: asyncpg.Connection, schema: str) -> None:
    """Raise the offset added to transaction ids past the highest position stored, so
    that new events sort after the restored ones.

    A logical dump restored into a new cluster brings events whose positions came
    from the old cluster's (higher) transaction ids. The repair locks the events table
    against writers (SHARE mode waits for appends in flight and holds new ones until
    it commits); every new connection of a store checks first
    (:func:`positions_need_repair`), so a process that stays up across a restore
    repairs before it appends on the new cluster.
    """
    q = f'"{schema}"'
    async with conn.transaction():
        await conn.execute(_lock_sql(), schema)
        await conn.execute(f"LOCK TABLE {q}.events IN SHARE MODE")
        row = await conn.fetchrow(
            f"SELECT (SELECT max(position) FROM {q}.events) AS highest,"
            " pg_current_xact_id()::text::bigint AS xid, o.xid_offset"
            f" FROM {q}.position_offset o FOR UPDATE"
        )
        assert row is not None
        highest, xid, offset = row["highest"], row["xid"], row["xid_offset"]
        if highest is not None and highest >= (xid + offset) << 20:
            new_offset = (highest >> 20) + 2 - xid
            await conn.execute(f"UPDATE {q}.position_offset SET xid_offset = $1", new_offset)
