"""Peer benchmark: loading one aggregate with the `eventsourcing` library (9.5.6) on PostgreSQL.

Measures the wall time of ``Application.repository.get(aggregate_id)`` for one
account aggregate (state ``balance``/``deposits``, event ``Deposited(amount)``),
with and without snapshots, through the library's default code path:

* an ``eventsourcing.application.Application`` subclass configured by its ``env``
  (``PERSISTENCE_MODULE=eventsourcing.postgres``, so ``PostgresFactory``; the
  ``JSONTranscoder`` with its default transcodings, no cipher or compressor; no
  aggregate cache, so every ``get()`` reconstructs from the database);
* the aggregate is an ``eventsourcing.domain.Aggregate`` subclass whose command
  method is decorated with ``@event("Deposited")`` (the declarative style);
* ``Repository.get()`` -> ``_reconstruct_aggregate()``: when snapshotting is on,
  one ``SELECT ... ORDER BY originator_version DESC LIMIT 1`` on the snapshots
  table, then ``EventStore.get(gt=snapshot version)`` on the events table, each
  row decoded by ``Mapper.to_domain_event()`` and applied by ``project_aggregate``.

Snapshots are taken by the library itself: ``snapshotting_intervals = {Account: n}``
makes ``Application.save()`` take one whenever a saved event's version is a
multiple of ``n`` (each snapshot is a ``repository.get(version=...)`` and a put).
Only when the aggregate has fewer events than ``n`` does ``prepare()`` call
``Application.take_snapshot()`` itself. The ``Created`` event is version 1, so N
deposits make N + 1 events. ``project_aggregate`` runs ``assert isinstance(event,
CanMutateProtocol)`` per event, a runtime Protocol check that is slow on Python
3.11: run without ``-O``, as an application normally would. Everything lives in
the schema ``es_peer_aggregate_bench``, created by ``setup()``, dropped by ``teardown()``.
"""

from __future__ import annotations

import statistics
import time
import uuid
from functools import cache
from typing import Any

SCHEMA = "es_peer_aggregate_bench"
SAVE_EVERY = 100  # deposits per Application.save() while preparing


def _amount(n: int) -> int:
    return n % 97 + 1


@cache
def _account_class() -> type[Any]:
    from eventsourcing.domain import Aggregate, Snapshot, event
    from eventsourcing.utils import get_topic

    class Account(Aggregate):
        def __init__(self) -> None:
            self.balance = 0
            self.deposits = 0

        @event("Deposited")
        def deposit(self, amount: int) -> None:
            self.balance += amount
            self.deposits += 1

    # The classes are local to this function: register their topics now, so that
    # stored events resolve in a process that loads without having prepared.
    for cls in (Account, Account.Created, Account.Deposited, Snapshot):  # type: ignore[attr-defined]
        get_topic(cls)
    return Account


@cache
def _app_class(snapshot_every: int | None) -> type[Any]:
    from eventsourcing.application import Application

    account = _account_class()

    class Accounts(Application):  # type: ignore[type-arg]
        name = "Accounts"  # tables accounts_events and accounts_snapshots
        snapshotting_intervals = {account: snapshot_every} if snapshot_every else {}

    return Accounts


def _app(dsn_parts: dict[str, Any], snapshot_every: int | None) -> Any:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(dsn_parts["dbname"]),
        "POSTGRES_HOST": str(dsn_parts["host"]),
        "POSTGRES_PORT": str(dsn_parts["port"]),
        "POSTGRES_USER": str(dsn_parts["user"]),
        "POSTGRES_PASSWORD": str(dsn_parts.get("password", "")),
        "POSTGRES_SCHEMA": SCHEMA,
        "CREATE_TABLE": "y",
        "IS_SNAPSHOTTING_ENABLED": "y" if snapshot_every else "n",
    }
    app = _app_class(snapshot_every)(env=env)
    assert app.repository.cache is None, "set no AGGREGATE_CACHE_MAXSIZE for this benchmark"
    assert (app.snapshots is not None) == bool(snapshot_every)
    return app


def _latest_snapshot_version(app: Any, aggregate_id: uuid.UUID) -> int | None:
    snapshots = list(app.snapshots.get(aggregate_id, desc=True, limit=1))
    return snapshots[0].originator_version if snapshots else None


def _schema_sql(dsn_parts: dict[str, Any], statement: str) -> None:
    import psycopg
    from psycopg import sql

    conninfo = {k: v for k, v in dsn_parts.items() if v != ""}
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(sql.Identifier(SCHEMA)))


def setup(dsn_parts: dict[str, Any]) -> None:
    """A fresh, empty schema; the applications create their tables in it."""
    _schema_sql(dsn_parts, "DROP SCHEMA IF EXISTS {} CASCADE")
    _schema_sql(dsn_parts, "CREATE SCHEMA {}")


def teardown(dsn_parts: dict[str, Any]) -> None:
    _schema_sql(dsn_parts, "DROP SCHEMA IF EXISTS {} CASCADE")


def prepare(dsn_parts: dict[str, Any], events: int, snapshot_every: int | None) -> str:
    """One account with `events` deposits, saved SAVE_EVERY at a time; returns its id."""
    app = _app(dsn_parts, snapshot_every)
    try:
        account = _account_class()()
        for n in range(events):
            account.deposit(_amount(n))
            if (n + 1) % SAVE_EVERY == 0:
                app.save(account)
        app.save(account)  # the rest, or nothing
        if snapshot_every and _latest_snapshot_version(app, account.id) is None:
            # Fewer events than the interval: the library took none; take one by hand.
            app.take_snapshot(account.id)
        if snapshot_every:
            taken = _latest_snapshot_version(app, account.id)
            assert taken is not None
            assert account.version - taken < snapshot_every
        return str(account.id)
    finally:
        app.close()


def load_seconds(
    dsn_parts: dict[str, Any], aggregate_id: str, snapshot_every: int | None, repeats: int = 7
) -> float:
    """Median wall time of `repository.get()` on one warm application, no cache."""
    app = _app(dsn_parts, snapshot_every)
    originator_id = uuid.UUID(aggregate_id)
    try:
        # The last stored version, read outside the timing: every load must reach it.
        (last,) = app.events.get(originator_id, desc=True, limit=1)
        deposits = last.originator_version - 1  # version 1 is Account.Created
        expected = sum(_amount(n) for n in range(deposits))
        app.repository.get(originator_id)  # warm-up, untimed: connection, prepared statements
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            account = app.repository.get(originator_id)
            times.append(time.perf_counter() - started)
            assert account.version == last.originator_version
            assert account.balance == expected
            assert account.deposits == deposits
        return statistics.median(times)
    finally:
        app.close()


if __name__ == "__main__":
    from importlib.metadata import version

    dsn = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "", "dbname": "test"}
    print(f"eventsourcing {version('eventsourcing')}, psycopg {version('psycopg')}")
    print(f"{'events':>8} {'snapshots':>10} {'ms':>9}")
    setup(dsn)
    try:
        for n_events in (10, 1000, 10000):
            for every in (None, 100):
                agg_id = prepare(dsn, n_events, every)
                seconds = load_seconds(dsn, agg_id, every)
                label = f"every {every}" if every else "none"
                print(f"{n_events:>8} {label:>10} {seconds * 1000:>9.2f}")
    finally:
        teardown(dsn)
